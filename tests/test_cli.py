"""The binaries answer a bad flag with one line, and the experiment flagfiles parse."""
import glob
import os

import pytest

from tests.cli_utils import assert_one_line_error, run_binary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARIES = ["deeplab_dpc.train", "deeplab_dpc.eval", "deeplab_dpc.vis", "deeplab_dpc.predict",
            "deeplab_dpc.export", "deeplab_dpc.stats"] + [
    f"tfrecords_tools.build_{name}_data"
    for name in ("synthetic", "cityscapes", "voc2012", "person_part", "ade20k", "folder")]


@pytest.mark.parametrize("binary", BINARIES)
def test_unknown_flag_in_a_flagfile_is_one_line(binary, tmp_path):
    flagfile = tmp_path / "bad.flags"
    flagfile.write_text("# a typo below\n--eval_batchsize=4\n")
    assert_one_line_error(run_binary(binary, f"--flagfile={flagfile}"), "eval_batchsize")


@pytest.mark.parametrize("binary,flag", [("deeplab_dpc.eval", "eval_batch_size"),
                                         ("deeplab_dpc.train", "log_steps")])
def test_bad_flag_value_is_one_line(binary, flag):
    assert_one_line_error(run_binary(binary, f"--{flag}=x"), f"--{flag}=x")


@pytest.mark.parametrize("flagfile", sorted(glob.glob(os.path.join(ROOT, "experiments",
                                                                    "*.flags"))))
def test_experiment_flagfiles_name_only_real_flags(flagfile):
    result = run_binary("deeplab_dpc.train", f"--flagfile={flagfile}", "--only_check_args",
                        cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_missing_flagfile_and_help():
    missing = run_binary("deeplab_dpc.eval", "--flagfile=/absent/eval.flags")
    assert_one_line_error(missing, "Unable to open flagfile", "/absent/eval.flags")
    assert "ERROR::" not in missing.stderr
    # the model flags and --dry_run are defined once, in deeplab_dpc.cli, yet --help
    # (not only --helpfull) lists them for each binary
    shown = run_binary("deeplab_dpc.train", "--help")  # absl exits 1 after help
    for flag in ("--model_preset", "--atrous_rates", "--dense_prediction_cell_json",
                 "--[no]dry_run", "--train_logdir"):
        assert flag in shown.stdout, flag


def test_crop_size_parsing():
    from deeplab_dpc import cli
    from deeplab_dpc.errors import InputError

    assert cli.parse_size(["513", "1025"], "crop_size") == (513, 1025)
    assert cli.parse_size("769,769", "crop_size") == (769, 769)
    with pytest.raises(InputError, match=r"write --crop_size=513,513 for a square"):
        cli.parse_size(["513"], "crop_size")  # the reference's repeated form, one kept
    with pytest.raises(InputError, match=r"expected height,width, got 513x513$"):
        cli.parse_size(["513x513"], "crop_size")
