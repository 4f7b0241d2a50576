"""Re-ranking as a user runs it: a tiny source run, its feature cache and search, then
`python -m deeplab_dpc.rerank` killed twice (its training child, then itself) and
rerun, ending with every run and each cell's mean in the study."""
import json
import os
import sqlite3

import numpy as np
import pytest

from tests.cli_utils import assert_one_line_error, run_binary
from tests.train import toy_data

STEPS = 2


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """(study, cache, root): a 3-trial search of 1-branch cells on a tiny run's cache."""
    from deeplab_dpc.train import deeplab

    root = tmp_path_factory.mktemp("rerank")
    data = root / "data"
    for split, num, seed in (("train", 8, 0), ("minival", 3, 1), ("val", 3, 2)):
        toy_data.write_toy_dataset(data, num_images=num, num_shards=1, split=split, seed=seed)
    config = toy_data.tiny_config(root / "source", data, training_number_of_steps=3,
                                  min_scale_factor=1.0, max_scale_factor=1.0,
                                  model={"head": "dpc", "cell": [
                                      {"kernel": 1, "op": "conv", "input": -1}]})
    deeplab.train_deeplab(config, log=lambda *a: None)
    cache, study = root / "cache", root / "study.sqlite"
    for module, *args in (
            ("deeplab_dpc.cache_features", f"--checkpoint_dir={root / 'source'}",
             f"--feature_cache_dir={cache}"),
            ("deeplab_dpc.search", f"--study={study}", f"--feature_cache_dir={cache}",
             "--num_branches=1", "--num_trials=3", "--proxy_training_number_of_steps=3",
             "--proxy_batch_size=2", "--dpc_filters=8", "--proxy_batch_norm_decay=0.9",
             "--proxy_loss_resolution=logits")):
        result = run_binary(module, *args)
        assert result.returncode == 0, result.stderr[-2000:]
    return study, cache, root


def _rerank(study, root, *args, kill=None):
    schedule = root / "schedule.flags"
    schedule.write_text(f"--training_number_of_steps={STEPS}\n--save_interval_steps=1\n")
    env = dict(os.environ)
    env.pop("DEEPLAB_DPC_KILL_AFTER", None)
    if kill:
        env["DEEPLAB_DPC_KILL_AFTER"] = kill
    return run_binary("deeplab_dpc.rerank", f"--study={study}", "--top_k=1",
                      "--extra_cells=aspp", "--num_seeds=2", f"--train_flagfile={schedule}",
                      f"--rerank_dir={root / 'reranks'}", *args, env=env)


def _rows(study):
    conn = sqlite3.connect(study)
    rows = conn.execute("SELECT key, seed, origin, state, search_miou, val_miou, run_dir "
                        "FROM reranks ORDER BY id").fetchall()
    summary = conn.execute("SELECT key, runs, search_mean, search_min, search_max, val_mean "
                           "FROM rerank_summary").fetchall()
    trials = conn.execute("SELECT key, origin, state FROM trials ORDER BY id").fetchall()
    conn.close()
    return rows, summary, trials


@pytest.mark.slow
def test_a_rerank_killed_twice_resumes_and_records_every_run_and_mean(searched):
    study, _, root = searched
    # 1. The baseline's proxy trial runs, the first run trains, then the re-rank is
    #    killed before evaluating it.
    result = _rerank(study, root, kill="rerank trained:1")
    assert result.returncode == -9, result.stderr[-2000:]
    rows, _, trials = _rows(study)
    assert ("ASPP(6,12,18;pool)", "baseline", "done") in trials
    assert [r[3] for r in rows] == ["running", "pending", "pending", "pending"]
    first, second = rows[0][6], rows[1][6]
    trained = os.stat(os.path.join(first, f"ckpt-{STEPS}.index")).st_mtime_ns

    # 2. Rerun: the dead owner's run is evaluated without retraining; the second run's
    #    training child is killed after step 1: one line, that run pending again.
    result = _rerank(study, root, kill="train step:1")
    assert_one_line_error(result, "training", second, "failed")
    assert os.stat(os.path.join(first, f"ckpt-{STEPS}.index")).st_mtime_ns == trained
    assert [r[3] for r in _rows(study)[0]] == ["done", "pending", "pending", "pending"]
    assert os.path.exists(os.path.join(second, "ckpt-1.index"))
    assert not os.path.exists(os.path.join(second, f"ckpt-{STEPS}.index"))

    # 3. Rerun: the second run resumes from its checkpoint, the rest run.
    result = _rerank(study, root)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resumed from {second}/ckpt-1 at step 1" in result.stdout
    rows, summary, trials = _rows(study)
    assert [r[3] for r in rows] == ["done"] * 4
    assert sorted({(r[2], r[1]) for r in rows}) == [("baseline", 0), ("baseline", 1),
                                                    ("top", 0), ("top", 1)]
    for key, runs, mean, low, high, val_mean in summary:
        own = [r for r in rows if r[0] == key]
        assert runs == 2
        assert mean == pytest.approx(np.mean([r[4] for r in own]))
        assert (low, high) == (min(r[4] for r in own), max(r[4] for r in own))
        assert val_mean == pytest.approx(np.mean([r[5] for r in own]))
    for row in rows:  # each run is an ordinary run directory, evaluated on both splits
        for split, miou in (("minival", row[4]), ("val", row[5])):
            metrics = json.loads(open(os.path.join(row[6], f"eval_{split}",
                                                   "metrics.json")).read())
            assert metrics["miou"] == pytest.approx(miou) and metrics["step"] == STEPS
    assert "search mean" in result.stdout

    # 4. A rerun has nothing left to do and changes nothing.
    again = _rerank(study, root)
    assert again.returncode == 0 and _rows(study)[0] == rows


def test_bad_rerank_settings_are_one_line(tmp_path):
    missing = run_binary("deeplab_dpc.rerank", f"--study={tmp_path}/none.sqlite")
    assert_one_line_error(missing, "--study", "does not exist")
    bad = run_binary("deeplab_dpc.rerank", f"--study={tmp_path}/none.sqlite",
                     "--extra_cells=asp")
    assert_one_line_error(bad, "--extra_cells", "'asp'")
    none = run_binary("deeplab_dpc.rerank", f"--study={tmp_path}/none.sqlite", "--top_k=0")
    assert_one_line_error(none, "nothing to re-rank")
