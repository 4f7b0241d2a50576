"""Model presets: the paper's rows by name, in the library and on the command line."""
import pytest

from deeplab_dpc import presets
from deeplab_dpc.errors import InputError
from tests.cli_utils import assert_one_line_error, run_binary


def test_presets_cover_the_papers_rows():
    # (backbone, head, decoder stride, classes) of Table 1's four rows, Table 3 and Table 4.
    rows = {(p.model["backbone"], p.model["head"], p.model["decoder_output_stride"],
             p.model["num_classes"]) for p in presets.PRESETS.values()}
    assert {("mobilenet_v2", "aspp", None, 19), ("mobilenet_v2", "dpc", None, 19),
            ("xception_71", "aspp", 4, 19), ("xception_71", "dpc", 4, 19),
            ("xception_71", "dpc", 4, 7), ("xception_71", "dpc", 4, 21)} <= rows
    for preset in presets.PRESETS.values():
        assert preset.model["output_stride"] == 16
        assert (preset.model["cell"] == presets.PUBLISHED_CELL) == (preset.model["head"] == "dpc")


def test_preset_costs_match_table_1_and_build_model_refuses_a_contradiction():
    from deeplab_dpc import build_model
    from deeplab_dpc.stats import complexity, report

    rows = complexity.preset_rows(names=["mobilenet_v2_aspp_cityscapes",
                                         "mobilenet_v2_dpc_cityscapes"])
    # Module MAdds on 65x129x320 features (a 1025x2049 input): ASPP's 1x1 and three
    # separable 3x3 branches 2.82B, the DPC 356,160 MACs a position -> 2.99B.
    branch_madds = [round(c.head.branch_macs / 1e9, 2) for _, _, c in rows]
    assert branch_madds[0] == pytest.approx(2.82, abs=0.01)
    assert rows[1][2].head.branch_macs == 356160 * 65 * 129
    text = report.format_presets(rows)
    assert "mobilenet_v2_dpc_cityscapes" in text and "75.38%" in text
    model = build_model(preset="quickstart")
    assert (model.num_classes, model.depth_multiplier, model.head) == (8, 0.5, "dpc")
    assert build_model(preset="quickstart", batch_norm_decay=0.9).batch_norm_decay == 0.9
    with pytest.raises(InputError, match="head_filters=16 contradicts model_preset"):
        build_model(preset="quickstart", head_filters=16)  # it changes the network
    with pytest.raises(InputError, match="backbone='xception_71' contradicts model_preset"):
        build_model(preset="quickstart", backbone="xception_71")
    with pytest.raises(InputError, match="unknown model_preset 'nope'"):
        build_model(preset="nope")


def test_model_preset_flag_conflicts_are_one_line(tmp_path):
    result = run_binary("deeplab_dpc.stats", "--model_preset=xception_71_dpc_cityscapes",
                        "--model_variant=mobilenet_v2")
    assert_one_line_error(result, "--model_variant contradicts --model_preset="
                                  "xception_71_dpc_cityscapes")
    # A preset fixes ASPP's switches too, not only the fields a paper row names.
    result = run_binary("deeplab_dpc.stats", "--model_preset=mobilenet_v2_aspp_cityscapes",
                        "--noaspp_with_separable_conv")
    assert_one_line_error(result, "--aspp_with_separable_conv contradicts --model_preset")
    result = run_binary("deeplab_dpc.stats", "--model_preset=quickstart", "--num_classes=19")
    assert_one_line_error(result, "--num_classes=19 contradicts --model_preset=quickstart")
    result = run_binary("deeplab_dpc.train", "--model_preset=mobilenet_v2_dpc_cityscapes",
                        f"--train_logdir={tmp_path}/run", "--dry_run")
    assert_one_line_error(result, "predicts 19 classes but dataset 'synthetic' has 8")
    result = run_binary("deeplab_dpc.stats", "--model_preset=quickstart", "--crop_size=65,65",
                        "--dry_run")
    assert result.returncode == 0, result.stderr
    assert "mobilenet_v2 (depth 0.5)" in result.stdout and "8 classes" in result.stdout
