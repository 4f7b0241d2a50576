"""`train.loop` trains a model that is not DeepLab, and a killed run of it resumes."""
import os
import subprocess
import sys

import numpy as np
import pytest

from deeplab_dpc import run_dir
from deeplab_dpc.errors import InputError
from tests.cli_utils import assert_one_line_error, run_binary
from tests.train import feature_head

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_killed_head_run_resumes_to_the_uninterrupted_weights(tmp_path):
    uninterrupted = feature_head.train(tmp_path / "whole")
    assert uninterrupted.step == feature_head.STEPS
    assert uninterrupted.losses[-1] < uninterrupted.losses[0]

    killed = tmp_path / "killed"
    process = subprocess.run(
        [sys.executable, "-m", "tests.train.feature_head", str(killed), "4"], cwd=REPO,
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert process.returncode == -9, process.stderr[-2000:]  # SIGKILL, after step 4
    assert sorted(f for f in os.listdir(killed) if f.endswith(".index")) == ["ckpt-3.index"]

    lines = []
    resumed = feature_head.train(killed, lines.append)
    assert lines[0] == f"resumed from {killed}/ckpt-3 at step 3"
    assert resumed.step == feature_head.STEPS and len(resumed.losses) == 3
    np.testing.assert_allclose(resumed.losses, uninterrupted.losses[3:], rtol=1e-5)
    assert len(resumed.model.weights) == len(uninterrupted.model.weights) > 10
    for a, b in zip(resumed.model.weights, uninterrupted.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)

    # Its run directory is not a DeepLab run: readers refuse it in one line.
    with pytest.raises(InputError, match=f"trained a {feature_head.MODEL_CLASS}, not a DeepLab"):
        run_dir.load_model(killed)
    assert_one_line_error(
        run_binary("deeplab_dpc.export", f"--checkpoint_path={killed}",
                   f"--export_path={tmp_path / 'exported'}"),
        "model_config.json", "not a DeepLab model")
    assert not os.path.exists(tmp_path / "exported")
