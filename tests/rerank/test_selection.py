"""Which cells a re-rank takes, and that its proxy trials stay out of the search's way."""
import json

import pytest

from deeplab_dpc import spec
from deeplab_dpc.search.study import Study

SETTINGS = {"cache_content_hash": "abc", "proxy": {"training_number_of_steps": 4},
            "sampler": {"num_branches": 1, "seed": 0}}


def test_spread_indices_cover_the_rest_below_the_top():
    from deeplab_dpc.rerank.selection import spread_indices

    assert spread_indices(28, 4) == [7, 14, 20, 27]
    assert spread_indices(4, 1) == [3]
    assert spread_indices(3, 5) == [1, 2]
    assert spread_indices(0, 3) == [] and spread_indices(5, 0) == []


@pytest.fixture
def study(tmp_path):
    """Ten 1-branch search trials scored 0.15 .. 0.55, the 1x1 cell scored 0.32."""
    s = Study(tmp_path / "s.sqlite", create=True)
    s.bind(SETTINGS)
    ops = [spec.Conv1x1()] + [spec.SeparableConv(r, r) for r in (1, 3, 6, 9, 12, 15, 18, 21)] \
        + [spec.PyramidPooling(1, 1)]
    with s.transaction() as conn:
        for i, op in enumerate(ops):
            cell = spec.CellSpec((spec.Branch(-1, op),))
            trial_id = s.insert_trial(conn, cell.canonical_key(), 0, cell.to_reference(),
                                      "uniform")
            score = 0.32 if isinstance(op, spec.Conv1x1) else round(0.10 + 0.05 * i, 2)
            conn.execute("UPDATE trials SET state = 'done', score = ?, result = ? WHERE id = ?",
                         (score, json.dumps({"intermediate": {"5": score}}), trial_id))
    yield s
    s.close()


def test_top_spread_and_baselines(study):
    from deeplab_dpc.rerank import selection

    chosen = selection.choose(study, top_k=2, spread_k=2, extras=("1x1", "aspp"))
    # Ranked: .55 .50 | .45 .40 .35 .32 (1x1) .30 (sep 9x9) .25 .20 .15; the spread takes
    # ranks 4 and 7 of those eight: sep 9x9 and .15.
    assert [c.origin for c in chosen] == ["top", "top", "spread", "spread", "baseline",
                                          "baseline"]
    assert [c.proxy_score for c in chosen[:5]] == pytest.approx([0.55, 0.50, 0.30, 0.15, 0.32])
    assert chosen[2].key == spec.CellSpec((spec.Branch(-1, spec.SeparableConv(9, 9)),)
                                          ).canonical_key()
    assert chosen[4].key == spec.CellSpec((spec.Branch(-1, spec.Conv1x1()),)).canonical_key()
    assert chosen[4].trial_id == 1  # the 1x1 baseline was a search trial: its score is used
    assert chosen[5].trial_id is None and chosen[5].key == "ASPP(6,12,18;pool)"


def test_baseline_and_repeat_trials_never_rank_parent_or_stop_the_search(study):
    from deeplab_dpc.rerank import selection
    from deeplab_dpc.search import heads, report

    best = spec.CellSpec((spec.Branch(-1, spec.PyramidPooling(1, 1)),))
    aspp = heads.AsppHead((6, 12, 18), True)
    assert selection.add_proxy_trials(study, [(aspp, 0)], "baseline") == 1
    assert selection.add_proxy_trials(study, [(best, 1), (best, 2)], "repeat") == 2
    assert selection.add_proxy_trials(study, [(aspp, 0)], "baseline") == 0  # held already
    with study.transaction() as conn:
        for trial_id, score in ((11, 0.99), (12, 0.98), (13, 0.97)):
            conn.execute("UPDATE trials SET state = 'done', score = ?, result = ? WHERE id = ?",
                         (score, json.dumps({"intermediate": {"5": 0.0}}), trial_id))
    assert [t.score for t in study.top(3, seed=0)] == pytest.approx([0.55, 0.50, 0.45])
    assert [t.score for t in study.top(3)] == pytest.approx([0.55, 0.50, 0.45])
    assert sorted(study.scores_at(5)) == pytest.approx(
        sorted(round(0.10 + 0.05 * i, 2) if i else 0.32 for i in range(10)))
    top = report.report_json(study, top=3)["top"]
    assert [row["score"] for row in top] == pytest.approx([0.55, 0.50, 0.45])
    assert len(report.report_json(study)["trials"]) == 13  # listed, not ranked
