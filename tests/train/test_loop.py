"""DeepLab training in-process: resuming, the run directory, load_model, initial checkpoints."""
import dataclasses
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from deeplab_dpc import run_dir
from deeplab_dpc.data import datasets
from deeplab_dpc.errors import InputError
from deeplab_dpc.train import deeplab, initial_checkpoint, losses
from tests.train import toy_data

STEPS, SAVE = 40, 20
# Every test here reads one 40-step run (about 80 s on 2 cores): the module is slow.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One uninterrupted run: 40 steps of 2 accumulated micro-batches, checkpoints at
    20 and 40, dropout and augmentation on, with the decoder (the toy's 8-pixel
    rectangles are too fine for logits at stride 16).
    Returns (config, TrainResult, optimizer/step/rng values of the last checkpoint)."""
    root = tmp_path_factory.mktemp("loop")
    data = toy_data.write_toy_dataset(root / "data")
    config = toy_data.tiny_config(
        root / "run", data, model=dict(decoder_output_stride=4), base_learning_rate=0.02,
        training_number_of_steps=STEPS, save_interval_steps=SAVE, gradient_accumulation_steps=2)
    result = deeplab.train_deeplab(config, log=lambda _: None)
    return config, result, _optimizer_values(config.train_logdir)


def _optimizer_values(path):
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)
            if name.startswith(("optimizer/", "step/", "rng/"))}


def _weights(model):
    return [w.numpy() for w in model.weights]


@pytest.mark.slow
def test_restarted_run_ends_as_if_never_stopped(run, tmp_path):
    """A run killed after step 20's checkpoint and restarted: same weights, BN
    statistics, momentum slots, step and dropout state as the uninterrupted run.
    (What a run killed there leaves on disk is the uninterrupted run's directory
    as of step 20; the restart is a fresh `train` on it.)"""
    config, uninterrupted, optimizer_values = run
    killed = tmp_path / "run"
    killed.mkdir()
    for name in os.listdir(config.train_logdir):
        if name.startswith((f"ckpt-{SAVE}.", run_dir.CONFIG_FILE)):
            shutil.copy(os.path.join(config.train_logdir, name), killed)
    with open(killed / "checkpoint", "w") as f:  # the CheckpointManager's index
        f.write(f'model_checkpoint_path: "ckpt-{SAVE}"\n')
    lines = []
    resumed = deeplab.train_deeplab(dataclasses.replace(config, train_logdir=str(killed)),
                                   log=lines.append)
    assert lines[0].startswith("resumed from") and resumed.step == STEPS
    assert len(resumed.losses) == STEPS - SAVE
    np.testing.assert_allclose(resumed.losses, uninterrupted.losses[SAVE:], rtol=1e-5)
    for a, b in zip(_weights(resumed.model), _weights(uninterrupted.model)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    again = _optimizer_values(str(killed))
    assert set(again) == set(optimizer_values) and len(again) > 100  # slots are there
    for name, value in optimizer_values.items():
        np.testing.assert_allclose(again[name], value, rtol=1e-5, atol=1e-7, err_msg=name)


def test_loss_falls_on_a_learnable_toy_set(run):
    _, result, _ = run
    first, last = np.mean(result.losses[:3]), np.mean(result.losses[-10:])
    assert first > 1.0 and last < 0.75 * first, result.losses
    # The saved model, in inference mode, on scenes it never saw: ln(3) = 1.1 is chance.
    scenes = [toy_data.toy_scene(np.random.default_rng(99 + i)) for i in range(8)]
    images = np.stack([s[0] for s in scenes]).astype(np.float32)
    labels = np.stack([s[1] for s in scenes])[..., None]
    logits = result.model(images, training=False)
    assert float(losses.softmax_cross_entropy(logits, labels, toy_data.IGNORE)) < 0.8


def test_run_directory_and_load_model(run):
    config, result, _ = run
    files = os.listdir(config.train_logdir)
    assert {"model_config.json", "checkpoint", "ckpt-20.index", "ckpt-40.index"} <= set(files)
    model, info = run_dir.load_model(config.train_logdir)
    assert info.name == "toy" and info.num_classes == toy_data.NUM_CLASSES
    assert model.get_config()["cell"] == result.model.get_config()["cell"]
    for a, b in zip(_weights(model), _weights(result.model)):
        np.testing.assert_array_equal(a, b)
    first, _ = run_dir.load_model(os.path.join(config.train_logdir, "ckpt-20"))
    assert not np.array_equal(first.get_layer("logits").get_weights()[0],
                              model.get_layer("logits").get_weights()[0])
    # TensorBoard itself reads the summaries back.
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(config.train_logdir, size_guidance={
        event_accumulator.TENSORS: 0, event_accumulator.IMAGES: 0})
    events.Reload()
    tags = events.Tags()
    assert {"loss/total", "loss/cross_entropy", "learning_rate"} <= set(tags["tensors"])
    assert {"image", "label", "prediction"} <= set(tags["tensors"])
    learning_rates = [tf.make_ndarray(e.tensor_proto) for e in events.Tensors("learning_rate")]
    assert len(learning_rates) >= 2 and all(np.isfinite(learning_rates))
    width, height, png = tf.make_ndarray(events.Tensors("prediction")[-1].tensor_proto)
    assert tf.io.decode_png(png).shape == (int(height), int(width), 3)


def test_load_model_refuses_bad_directories(run, tmp_path):
    config, _, _ = run
    with pytest.raises(InputError, match="does not exist"):
        run_dir.load_model(tmp_path / "nowhere")
    with pytest.raises(InputError, match="no checkpoint"):
        run_dir.load_model(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(config.train_logdir, broken)
    with open(broken / "model_config.json", "w") as f:
        f.write("{not json")
    with pytest.raises(InputError, match="model_config.json: not valid JSON"):
        run_dir.load_model(broken)
    shutil.copy(os.path.join(config.train_logdir, "model_config.json"), broken)
    for name in os.listdir(broken):
        if name.startswith("ckpt-40.data"):
            with open(broken / name, "wb") as f:
                f.write(b"garbage")
    with pytest.raises(InputError, match="ckpt-40"):
        run_dir.load_model(broken)


def test_a_run_directory_belongs_to_one_model(run):
    config, result, _ = run
    other = deeplab.build_model(
        dataclasses.replace(config, model=dict(config.model, head_filters=8)), 3)
    info = datasets.get_dataset_info(config.dataset, config.dataset_dir)
    with pytest.raises(InputError, match="different model.*head_filters"):
        run_dir.write_run_config(config.train_logdir, other, info, {})


@pytest.mark.parametrize("logits_only", [True, False])
def test_initial_checkpoint_without_last_layers(run, logits_only):
    """Fine-tuning on a dataset with another class count, as the reference's
    --initialize_last_layer=false [--last_layers_contain_logits_only]."""
    config, source, _ = run
    model = deeplab.build_model(config, num_classes=5)
    fresh = {layer.name: [w.numpy() for w in layer.weights] for layer in model.layers}
    with pytest.raises(InputError, match="logits.*initialize_last_layer"):
        initial_checkpoint.restore_initial_weights(model, config.train_logdir)
    skipped, _ = initial_checkpoint.restore_initial_weights(model, config.train_logdir, False, logits_only)
    assert set(skipped) == ({"logits"} if logits_only else
                            {"logits", "dense_prediction_cell", "decoder"})
    for layer in model.layers:
        if not layer.weights:
            continue
        now = [w.numpy() for w in layer.weights]
        took = layer.name not in skipped
        expected = source.model.get_layer(layer.name).get_weights() if took else \
            fresh[layer.name]
        for a, b in zip(now, expected):
            np.testing.assert_array_equal(a, b, err_msg=layer.name)
