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
