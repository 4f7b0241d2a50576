"""`python -m deeplab_dpc.train` as a user runs it: a diverging run, bad flags.
(Learning, resuming and the run directory are tested in-process in test_loop.)"""
import os

import numpy as np
import pytest

from tests.cli_utils import assert_one_line_error, run_binary, user_lines
from tests.train import toy_data

BINARY = "deeplab_dpc.train"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return toy_data.write_toy_dataset(tmp_path_factory.mktemp("train_binary") / "data")


@pytest.mark.slow
def test_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(data, tmp_path):
    logdir = tmp_path / "run"
    result = run_binary(BINARY, *toy_data.tiny_flags(
        logdir, data, training_number_of_steps=40, save_interval_steps=3, log_steps=10,
        slow_start_step=3, slow_start_learning_rate=1e-3, base_learning_rate=1e30),
        timeout=300)
    line = assert_one_line_error(result, "loss is nan at step", f"{logdir}/ckpt-3")
    assert "last good checkpoint kept" in line
    assert sorted(f for f in os.listdir(logdir) if f.endswith(".index")) == ["ckpt-3.index"]

    from deeplab_dpc import run_dir

    model, _ = run_dir.load_model(str(logdir))
    assert all(np.isfinite(w.numpy()).all() for w in model.weights)


def test_unknown_flag_in_a_flagfile_is_one_line(tmp_path):
    flagfile = tmp_path / "train.flags"
    flagfile.write_text("--train_logdir=x\n--trian_batch_size=4\n")
    assert_one_line_error(run_binary(BINARY, f"--flagfile={flagfile}"), "trian_batch_size")


def test_bad_cell_json_is_one_line(data, tmp_path):
    cell = tmp_path / "cell.json"
    cell.write_text('[{"kernel": 3, "rate": [1, 6], "op": "conv", "input": 4}]')
    result = run_binary(BINARY, *toy_data.tiny_flags(tmp_path / "run", data),
                        f"--dense_prediction_cell_json={cell}")
    assert_one_line_error(result, "cell.json")
    assert not (tmp_path / "run").exists()


def test_missing_dataset_dir_is_one_line(tmp_path):
    missing = tmp_path / "nowhere"
    result = run_binary(BINARY, *toy_data.tiny_flags(tmp_path / "run", missing))
    assert_one_line_error(result, "--dataset_dir", str(missing))
    result = run_binary(BINARY, f"--train_logdir={tmp_path / 'run'}", "--dataset=cityscapes")
    assert_one_line_error(result, "--dataset_dir is required")
    assert not user_lines(result.stdout)
