"""`analyze` on a fixed study: Spearman's rho and p-value against the textbook formulas
computed here, the Pareto front and noise floor by hand, every figure written, and a
fixed cell's diagram naming each branch's input and op."""
import itertools
import json
import os

import numpy as np
import pytest

from deeplab_dpc.search.study import Study
from tests.cli_utils import assert_one_line_error, run_binary

SETTINGS = {"cache_content_hash": "abc", "proxy": {"training_number_of_steps": 4},
            "sampler": {"num_branches": 2, "seed": 0}}
# (cell, proxy score, MAdds); the first five are re-ranked too.
CELLS = [
    ([{"kernel": 3, "rate": [1, 6], "op": "conv", "input": -1},
      {"op": "pyramid_pooling", "grid_size": [2, 4], "input": 0}], 0.61, 900),
    ([{"kernel": 1, "op": "conv", "input": -1},
      {"kernel": 3, "rate": [6, 3], "op": "conv", "input": -1}], 0.55, 500),
    ([{"kernel": 3, "rate": [18, 15], "op": "conv", "input": -1},
      {"kernel": 1, "op": "conv", "input": 0}], 0.58, 700),
    ([{"op": "pyramid_pooling", "grid_size": [1, 1], "input": -1},
      {"kernel": 1, "op": "conv", "input": 0}], 0.40, 300),
    ([{"kernel": 3, "rate": [3, 3], "op": "conv", "input": -1},
      {"kernel": 3, "rate": [9, 9], "op": "conv", "input": -1}], 0.50, 800),
    ([{"kernel": 1, "op": "conv", "input": -1},
      {"kernel": 1, "op": "conv", "input": 0}], 0.30, 200),
]
RERANKED = [0.70, 0.66, 0.64, 0.52, 0.60]  # mean of seeds 0 and 1 (value +- 0.01)
REPEATS = [0.60, 0.62]  # cell 0 at seeds 1 and 2: the noise floor


@pytest.fixture
def study(tmp_path):
    from deeplab_dpc import spec
    from tests.run_fixtures import save_run
    from deeplab_dpc.data import datasets
    from deeplab_dpc.model import DeepLab

    s = Study(tmp_path / "s.sqlite", create=True)
    s.bind(SETTINGS)
    keys = []
    with s.transaction() as conn:
        for cell, score, madds in CELLS:
            key = spec.CellSpec.from_reference(cell).canonical_key()
            keys.append(key)
            trial_id = s.insert_trial(conn, key, 0, cell, "uniform")
            conn.execute("UPDATE trials SET state = 'done', score = ?, result = ? WHERE id = ?",
                         (score, json.dumps({"madds": madds, "params": madds // 10}), trial_id))
        for seed, score in zip((1, 2), REPEATS):
            trial_id = s.insert_trial(conn, keys[0], seed, CELLS[0][0], "repeat")
            conn.execute("UPDATE trials SET state = 'done', score = ? WHERE id = ?",
                         (score, trial_id))
        conn.execute("INSERT INTO schedules VALUES ('h', '[]', 0)")
        # The best re-ranked cell's run directory holds its trained model (Figure 5b).
        best_run = str(tmp_path / "best_run")
        model = DeepLab(3, backbone="mobilenet_v2", depth_multiplier=0.25, head="dpc",
                        cell=CELLS[0][0], head_filters=8)
        save_run(best_run, model, datasets.DatasetInfo("toy", 3))
        for (cell, _, _), key, mean, origin in zip(CELLS, keys, RERANKED,
                                                   ("top", "top", "spread", "spread", "top")):
            for seed, delta in ((0, -0.01), (1, 0.01)):
                conn.execute(
                    "INSERT INTO reranks (key, seed, schedule, origin, cell, run_dir, state, "
                    "search_miou, val_miou, created) VALUES (?, ?, 'h', ?, ?, ?, 'done', ?, ?, 0)",
                    (key, seed, origin, json.dumps(cell), best_run if key == keys[0] else "x",
                     mean + delta, mean - 0.1))
    yield s, keys, model
    s.close()


def _ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0] * len(values)
    for rank, i in enumerate(order, start=1):
        ranks[i] = rank
    return ranks


def test_analysis_numbers_and_figures(study, tmp_path):
    from deeplab_dpc.analyze import analysis

    s, keys, model = study
    result = analysis.analyze(s, str(tmp_path / "out"), bootstrap_samples=200)

    # Spearman by hand: rho = 1 - 6 sum d^2 / (n (n^2 - 1)); the exact two-sided p is the
    # share of the n! pairings of the ranks whose |rho| is at least as large.
    proxy = [c[1] for c in CELLS[:5]]
    n = 5

    def rho_of(a, b):
        return 1 - 6 * float((np.subtract(a, b) ** 2).sum()) / (n * (n * n - 1))

    rho = rho_of(_ranks(proxy), _ranks(RERANKED))  # ranks 5,3,4,1,2 vs 5,4,3,1,2
    assert rho == pytest.approx(0.9)
    pairings = list(itertools.permutations(range(1, n + 1)))
    p = sum(abs(rho_of(_ranks(proxy), perm)) >= rho - 1e-12 for perm in pairings) / len(pairings)
    assert p == pytest.approx(10 / 120)
    spearman = result["spearman"]
    assert spearman["rho"] == pytest.approx(rho) and spearman["p_value"] == pytest.approx(p)
    assert spearman["n"] == 5
    low, high = spearman["bootstrap_interval_95"]
    assert -1 <= low <= rho <= high <= 1

    # Pareto front by hand: (200, .30), (300, .40), (500, .55), (700, .58), (900, .61);
    # (800, .50) is beaten by (500, .55).
    assert [(f["madds"], f["score"]) for f in result["pareto_front"]] == [
        (200, 0.30), (300, 0.40), (500, 0.55), (700, 0.58), (900, 0.61)]
    # The noise floor: cell 0 at seeds 0, 1, 2.
    floor = result["noise_floor"]
    assert floor["scores"] == [0.61, 0.60, 0.62] and floor["seeds"] == [0, 1, 2]
    assert floor["std"] == pytest.approx(0.01)
    assert result["reranked_proxy_spread"]["std"] == pytest.approx(float(np.std(proxy, ddof=1)))
    assert "exceeds the noise floor" in result["verdict"]
    # Best by the re-rank, worst by the proxy; branch weights from the best run's model.
    assert result["best_cell"]["key"] == keys[0] and result["best_cell"]["chosen_by"] == "re-rank"
    assert result["worst_cell"]["key"] == keys[5]
    kernel = np.abs(model.head_layer.projection.conv.kernel.numpy())[0, 0]
    assert result["branch_l1"]["l1"] == pytest.approx([kernel[:8].sum(), kernel[8:].sum()])
    # Every figure, and analysis.json holding the same numbers.
    assert set(result["figures"]) == set(analysis.FIGURES)
    for path in result["figures"].values():
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert saved["spearman"]["rho"] == pytest.approx(rho)
    assert saved["pareto_front"] == result["pareto_front"]


def test_a_noise_floor_above_the_spread_says_the_proxy_cannot_rank(study, tmp_path):
    from deeplab_dpc.analyze import analysis

    s, keys, _ = study
    with s.transaction() as conn:
        trial_id = s.insert_trial(conn, keys[0], 3, CELLS[0][0], "repeat")
        conn.execute("UPDATE trials SET state = 'done', score = 0.20 WHERE id = ?", (trial_id,))
    result = analysis.analyze(s, str(tmp_path / "out"), bootstrap_samples=10, plots=False)
    assert result["noise_floor"]["scores"] == [0.61, 0.60, 0.62, 0.20]
    assert result["verdict"].startswith("the proxy cannot rank the re-ranked cells")
    assert result["figures"] == {}


def test_the_diagram_names_every_branch_input_and_op():
    from deeplab_dpc.analyze import diagram
    from deeplab_dpc.spec import published_cell

    graph = diagram.cell_graph(published_cell())
    labels = {n["id"]: n["label"] for n in graph["nodes"]}
    assert labels == {"F": "backbone features", "b0": "b0: 3x3 sep conv, rate 1x6",
                      "b1": "b1: 3x3 sep conv, rate 18x15", "b2": "b2: 3x3 sep conv, rate 6x3",
                      "b3": "b3: 3x3 sep conv, rate 1x1", "b4": "b4: 3x3 sep conv, rate 6x21",
                      "concat": "concat + 1x1 projection"}
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert edges == {("F", "b0"), ("b0", "b1"), ("b1", "b2"), ("b0", "b3"), ("b0", "b4"),
                     *((f"b{i}", "concat") for i in range(5))}
    pooled = diagram.cell_graph(CELLS[3][0])
    assert [n["label"] for n in pooled["nodes"]][1:3] == ["b0: avg pool 1x1 grid",
                                                         "b1: 1x1 conv"]


def test_the_binary_writes_the_analysis(study, tmp_path):
    s, _, _ = study
    out = tmp_path / "binary"
    result = run_binary("deeplab_dpc.analyze", f"--study={s.path}", f"--output_dir={out}",
                        "--bootstrap_samples=50")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Spearman rho proxy vs re-rank 0.900" in result.stdout
    assert sorted(os.listdir(out)) == sorted(["analysis.json", *analysis_figures()])
    missing = run_binary("deeplab_dpc.analyze", f"--study={tmp_path}/none.sqlite",
                         f"--output_dir={tmp_path}/o")
    assert_one_line_error(missing, "--study", "does not exist")


def analysis_figures():
    from deeplab_dpc.analyze.analysis import FIGURES

    return FIGURES.values()
