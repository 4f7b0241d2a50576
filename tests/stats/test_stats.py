"""The stats binary and the paper's Table 1."""
import pytest

from deeplab_dpc.stats import complexity
from tests.cli_utils import assert_one_line_error, run_binary


@pytest.mark.slow
def test_paper_table1_within_tolerance():
    rows = {(r.backbone, r.head): r for r in complexity.paper_table1_rows()}
    for row in rows.values():  # MAdds within 1.5% of 2.82B, 3.00B, 18.12B, 6.84B
        assert abs(row.ours.branch_macs / 1e9 - row.paper_madds) / row.paper_madds < 0.015
    for backbone in ("mobilenet_v2", "xception_71"):  # DPC params within 2%
        r = rows[(backbone, "dpc")]
        assert abs(r.ours.branch_params / 1e6 - r.paper_params) / r.paper_params < 0.02
    # The documented mismatch: the paper's ASPP parameter figures follow another rule.
    r = rows[("mobilenet_v2", "aspp")]
    assert r.ours.branch_params / 1e6 > 1.3 * r.paper_params


def _run(*args):
    return run_binary("deeplab_dpc.stats", *args)


def test_stats_binary_reports_a_model(tmp_path):
    cell = tmp_path / "cell.json"
    cell.write_text('[{"kernel": 1, "op": "conv", "input": -1}]')
    out = _run("--model_variant=mobilenet_v2", "--depth_multiplier=0.5", "--crop_size=129,257",
               f"--dense_prediction_cell_json={cell}")
    assert out.returncode == 0, out.stderr
    assert "backbone features 9x17x160" in out.stdout
    # One 1x1 branch on 160 channels: 160*256 weights at 9x17 positions.
    assert "branch conv params   0.041M   MAdds 0.01B" in out.stdout


def test_stats_binary_bad_input_is_one_line(tmp_path):
    cell = tmp_path / "cell.json"
    cell.write_text('[{"kernel": 3, "rate": [2, 2], "op": "conv", "input": -1}]')
    assert_one_line_error(_run(f"--dense_prediction_cell_json={cell}"), cell, "branch 0",
                          "'rate'")
    assert_one_line_error(_run("--crop_size=12"), "--crop_size")
