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

    # A checkpoint write killed midway leaves such a folder: the resumed run removes it.
    (killed / "ckpt-4_temp").mkdir()
    lines = []
    resumed = feature_head.train(killed, lines.append)
    assert not (killed / "ckpt-4_temp").exists()
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


def test_train_step_is_one_sgd_step_of_the_reference_loss():
    """`TrainStep` driven by hand: one call equals a step of SGD on the reference loss,
    computed here directly with a GradientTape."""
    import keras
    import tensorflow as tf

    from deeplab_dpc.train import loop, losses
    from deeplab_dpc.train.config import TrainConfig

    features, labels = feature_head.features_and_labels()
    x, y = features[:2], labels[:2]
    model = keras.Sequential([keras.Input((None, None, feature_head.CHANNELS)),
                              keras.layers.Conv2D(feature_head.NUM_CLASSES, 1)])
    with tf.GradientTape() as tape:
        expected_loss = losses.softmax_cross_entropy(model(x), y, feature_head.IGNORE)
    grads = tape.gradient(expected_loss, model.trainable_variables)
    expected = [w.numpy() - 0.1 * g.numpy() for w, g in zip(model.trainable_variables, grads)]

    config = TrainConfig(train_logdir="unused", train_batch_size=2)
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    step = tf.Variable(0, dtype=tf.int64)
    strategy = tf.distribute.get_strategy()
    batches = strategy.distribute_datasets_from_function(
        lambda ctx: tf.data.Dataset.from_tensors({"image": x[None], "label": y[None]}))
    train_step = loop.TrainStep(config, model, optimizer, step, strategy, feature_head.IGNORE)
    xent, reg, (image, label) = train_step(iter(batches))
    assert int(step.numpy()) == 1 and float(reg) == 0.0
    np.testing.assert_allclose(float(xent), float(expected_loss), rtol=1e-6)
    np.testing.assert_array_equal(image.numpy(), x[0])
    for weight, value in zip(model.trainable_variables, expected):
        np.testing.assert_allclose(weight.numpy(), value, rtol=1e-5, atol=1e-7)


def test_trains_batch_norm_selects_the_batch_norm_layers_that_train(tmp_path):
    import keras

    from deeplab_dpc.train import loop

    def bn_values(model):
        return {l.path: [w.numpy().copy() for w in l.weights] for l in model._flatten_layers()
                if isinstance(l, keras.layers.BatchNormalization)}

    initial = bn_values(feature_head.model_fn())
    result = loop.train(feature_head.config(tmp_path / "run"), feature_head.model_fn,
                        feature_head.dataset_fn, feature_head.IGNORE,
                        hooks=loop.TrainHooks(trains_batch_norm=lambda l: "branch0" in l.path),
                        log=lambda line: None)
    trained = bn_values(result.model)
    assert len(trained) == 3 and sum("branch0" in p for p in trained) == 1
    for path, values in trained.items():
        changed = [not np.array_equal(a, b) for a, b in zip(values, initial[path])]
        # gamma, beta, moving mean, moving variance: all move, or none does.
        assert all(changed) if "branch0" in path else not any(changed), (path, changed)
