"""Importing reference TF1 checkpoints: every variable taken once, into the right
weight (checked by value ranges and by a forward pass written from the TF1 names),
the run directory that eval and export read, one-line errors, and training that
starts from a TF1 checkpoint."""
import json
import os

import numpy as np
import pytest

from tests.cli_utils import assert_one_line_error, run_binary, user_lines
from tests.import_tf1_checkpoint import tf1_reference as ref

BINARY = "deeplab_dpc.import_tf1_checkpoint"
GLOBAL_STEP = 90000
# Variables a released checkpoint may hold beside the model's: a Momentum slot, a
# moving-average copy and an ImageNet classifier; the import leaves them unused.
EXTRAS = {"MobilenetV2/Conv/weights/Momentum": (3, 3, 3, 32),
          "aspp0/weights/ExponentialMovingAverage": (1, 1, 320, 256),
          "MobilenetV2/Logits/Conv2d_1c_1x1/weights": (1, 1, 8, 4)}
POOLING_CELL = [{"kernel": 3, "rate": [1, 6], "op": "conv", "input": -1},
                {"kernel": 1, "op": "conv", "input": 0},
                {"op": "pyramid_pooling", "grid_size": [1, 2], "input": -1},
                {"kernel": 3, "rate": [6, 3], "op": "conv", "input": 1},
                {"op": "pyramid_pooling", "grid_size": [1, 1], "input": 3}]


def _write(tmp_path, variables, extras=None, global_step=GLOBAL_STEP, seed=0):
    values = ref.random_values(variables, seed)
    extra = ref.random_values(list((extras or {}).items()), seed + 1)
    prefix = ref.write_tf1_checkpoint(tmp_path / "tf1" / "model.ckpt", {**values, **extra},
                                      global_step)
    return prefix, values


def _import_binary(prefix, out, *flags):
    result = run_binary(BINARY, f"--tf1_checkpoint={prefix}", f"--output_dir={out}", *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _assert_each_variable_taken_once(model, values):
    """Each Keras weight equals the variable the table names, every checkpoint
    variable of the model is taken exactly once, and batch-norm weights hold values
    of their own kind's range (so a gamma/beta swap in the table shows)."""
    from deeplab_dpc.import_tf1_checkpoint import names

    taken = [names.tf1_name(w.path, model.backbone_name) for w in model.weights]
    assert len(taken) == len(set(taken)) == len(values)
    assert set(taken) == set(values)
    for weight, name in zip(model.weights, taken):
        np.testing.assert_array_equal(weight.numpy(), values[name], err_msg=weight.path)
        stat = weight.path.rsplit("/", 1)[-1]
        if stat in ref.BN_RANGES:
            low, high = ref.BN_RANGES[stat]
            assert low <= weight.numpy().min() and weight.numpy().max() < high, weight.path


def _endpoints(model, size=(65, 81), seed=3):
    """The imported backbone's features and low-level features of a random image."""
    import tensorflow as tf

    image = tf.random.stateless_uniform((1, *size, 3), (seed, 0), 0, 255)
    endpoints = model.backbone(model.get_layer("preprocess")(image), training=False)
    return endpoints["features"], endpoints["low_level"]


def _our_head(model, features, low_level):
    x = model.head_layer(features, training=False)
    if model.decoder_output_stride:
        x = model.get_layer("decoder")([x, low_level], training=False)
    return model.get_layer("logits")(x).numpy()


def _assert_head_equals_reference(model, values, reference_head):
    import tensorflow as tf

    features, low_level = _endpoints(model)
    v = {name: tf.constant(value) for name, value in values.items()}
    theirs = reference_head(features, v)
    if model.decoder_output_stride:
        theirs = ref.decoder(theirs, low_level, v)
    theirs = ref.logits(theirs, v).numpy()
    ours = _our_head(model, features, low_level)
    assert ours.shape == theirs.shape
    assert theirs.std() > 0.1  # not a map of zeros that any wiring would match
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())


# ------------------------------------------------------------------ the three models
def test_mobilenet_v2_aspp_imports_into_a_run_directory_that_eval_reads(tmp_path):
    from deeplab_dpc import run_dir

    variables = ref.listing("mobilenet_v2_aspp_21classes.json")
    prefix, values = _write(tmp_path, variables, EXTRAS)
    out = tmp_path / "run"
    result = _import_binary(prefix, out, "--model_variant=mobilenet_v2",
                            "--dataset=pascal_voc_seg")
    assert "272 variables used" in result.stdout

    model, info = run_dir.load_model(str(out))
    assert (model.head, model.atrous_rates, model.num_classes) == ("aspp", (), 21)
    assert info.name == "pascal_voc_seg" and info.class_names[15] == "person"
    _assert_each_variable_taken_once(model, values)
    _assert_head_equals_reference(model, values, ref.aspp)
    # The reference's global step names the checkpoint; eval's follow mode ends there.
    assert os.path.exists(out / f"ckpt-{GLOBAL_STEP}.index")
    assert run_dir.checkpoint_step(run_dir.latest_checkpoint(str(out))) == GLOBAL_STEP

    report = json.loads((out / "tf1_import.json").read_text())
    assert [u["tf1"] for u in report["used"]] == [n for n, _ in variables]
    assert report["unused"] == {
        "global step": ["global_step"],
        "optimizer slots": ["MobilenetV2/Conv/weights/Momentum"],
        "moving averages": ["aspp0/weights/ExponentialMovingAverage"],
        "ImageNet classifier": ["MobilenetV2/Logits/Conv2d_1c_1x1/weights"]}
    assert report["unset"] == []


def test_mobilenet_v2_at_depth_half_with_dpc_and_decoder(tmp_path):
    from deeplab_dpc import run_dir
    from deeplab_dpc.spec import published_cell

    model_options = dict(num_classes=19, backbone="mobilenet_v2", depth_multiplier=0.5,
                         head="dpc", decoder_output_stride=4)
    variables = ref.model_listing(**model_options)
    assert len(variables) == 337
    prefix, values = _write(tmp_path, variables)
    cell = tmp_path / "cell.json"
    cell.write_text(published_cell().to_json())
    out = tmp_path / "run"
    _import_binary(prefix, out, "--model_variant=mobilenet_v2", "--depth_multiplier=0.5",
                   f"--dense_prediction_cell_json={cell}", "--decoder_output_stride=4",
                   "--num_classes=19")
    model, info = run_dir.load_model(str(out))
    assert model.cell == published_cell() and info.num_classes == 19
    _assert_each_variable_taken_once(model, values)
    cell_json = published_cell().to_reference()
    _assert_head_equals_reference(
        model, values, lambda f, v: ref.dense_prediction_cell(f, v, cell_json))


def test_a_cell_with_pyramid_pooling_equals_the_reference_head(tmp_path):
    """In the library: grid pooling, 1x1 convs and chained branches, by the TF1 names."""
    from deeplab_dpc.import_tf1_checkpoint import converter
    from deeplab_dpc.model import DeepLab

    model_options = dict(num_classes=5, backbone="mobilenet_v2", depth_multiplier=0.5,
                         head="dpc", cell=POOLING_CELL, decoder_output_stride=4)
    prefix, values = _write(tmp_path, ref.model_listing(**model_options))
    model = DeepLab(**model_options)
    report = converter.load_tf1_weights(model, prefix)
    assert len(report.used) == len(values) and report.unset == []
    _assert_each_variable_taken_once(model, values)
    _assert_head_equals_reference(
        model, values, lambda f, v: ref.dense_prediction_cell(f, v, POOLING_CELL))


def test_aspp_with_atrous_rates_and_crop_derived_pooling_equals_the_reference_head(tmp_path):
    """`image_pooling_crop_size` 33x49 at output stride 16: the reference pools a 3x4
    window (int((crop - 1) / 16) + 1) at stride 1 over the 5x6 feature map."""
    from deeplab_dpc.import_tf1_checkpoint import converter
    from deeplab_dpc.model import DeepLab

    model_options = dict(num_classes=5, backbone="mobilenet_v2", depth_multiplier=0.5,
                         head="aspp", atrous_rates=(1, 2, 3), image_pooling_crop_size=(33, 49))
    prefix, values = _write(tmp_path, ref.model_listing(**model_options))
    model = DeepLab(**model_options)
    converter.load_tf1_weights(model, prefix)
    _assert_each_variable_taken_once(model, values)
    _assert_head_equals_reference(
        model, values, lambda f, v: ref.aspp(f, v, rates=(1, 2, 3), pool_window=(3, 4)))


@pytest.mark.slow
def test_xception_71_with_the_published_cell_and_decoder(tmp_path):
    """The released Cityscapes model's architecture: 812 variables, about 42M numbers."""
    from deeplab_dpc import run_dir
    from deeplab_dpc.spec import published_cell

    variables = ref.listing("xception_71_dpc_decoder4_19classes.json")
    assert sum(int(np.prod(s)) for _, s in variables) > 41_000_000
    prefix, values = _write(tmp_path, variables)
    cell = tmp_path / "cell.json"
    cell.write_text(published_cell().to_json())
    out = tmp_path / "run"
    result = _import_binary(prefix, out, "--model_variant=xception_71",
                            f"--dense_prediction_cell_json={cell}",
                            "--decoder_output_stride=4", "--dataset=cityscapes")
    assert "812 variables used" in result.stdout
    model, info = run_dir.load_model(str(out))
    assert info.name == "cityscapes" and model.backbone_name == "xception_71"
    _assert_each_variable_taken_once(model, values)
    cell_json = published_cell().to_reference()
    _assert_head_equals_reference(
        model, values, lambda f, v: ref.dense_prediction_cell(f, v, cell_json))


# ------------------------------------------------------------------------- refusals
@pytest.fixture(scope="module")
def aspp_checkpoint(tmp_path_factory):
    """A mobilenet_v2 + ASPP checkpoint (21 classes) and its values."""
    return _write(tmp_path_factory.mktemp("aspp"),
                  ref.listing("mobilenet_v2_aspp_21classes.json"))


def test_a_shape_mismatch_is_one_line_naming_the_variable_and_both_shapes(
        aspp_checkpoint, tmp_path):
    prefix, _ = aspp_checkpoint
    result = run_binary(BINARY, f"--tf1_checkpoint={prefix}", f"--output_dir={tmp_path}/run",
                        "--num_classes=19")
    assert_one_line_error(result, "logits/semantic/weights", "[1, 1, 256, 21]",
                          "logits/kernel", "[1, 1, 256, 19]", "21 classes",
                          "--num_classes=21")
    assert not (tmp_path / "run").exists()


def test_a_missing_variable_is_one_line_naming_it(tmp_path):
    variables = [(n, s) for n, s in ref.listing("mobilenet_v2_aspp_21classes.json")
                 if n != "MobilenetV2/expanded_conv_3/project/BatchNorm/gamma"]
    prefix, _ = _write(tmp_path, variables)
    result = run_binary(BINARY, f"--tf1_checkpoint={prefix}", f"--output_dir={tmp_path}/run")
    assert_one_line_error(result, "has no variable MobilenetV2/expanded_conv_3/project/"
                          "BatchNorm/gamma", "block_3_project_BN/gamma")
    assert not (tmp_path / "run").exists()


def test_a_checkpoint_of_another_head_names_what_is_missing_or_left_over(
        aspp_checkpoint, tmp_path):
    from deeplab_dpc.errors import InputError
    from deeplab_dpc.import_tf1_checkpoint import converter
    from deeplab_dpc.model import DeepLab
    from deeplab_dpc.spec import published_cell

    # An ASPP checkpoint imported as a DPC model.
    prefix, _ = aspp_checkpoint
    cell = tmp_path / "cell.json"
    cell.write_text(published_cell().to_json())
    result = run_binary(BINARY, f"--tf1_checkpoint={prefix}", f"--output_dir={tmp_path}/run",
                        f"--dense_prediction_cell_json={cell}")
    assert_one_line_error(result, "has no variable meta_architecture/branch0_depthwise",
                          "holds an ASPP head: leave out --dense_prediction_cell_json")
    # A DPC + decoder checkpoint read as ASPP, then as a DPC without the decoder.
    options = dict(num_classes=3, backbone="mobilenet_v2", depth_multiplier=0.5, head="dpc")
    prefix, _ = _write(tmp_path / "dpc", ref.model_listing(**options, decoder_output_stride=4))
    with pytest.raises(InputError, match="no variable image_pooling/weights.*holds a dense "
                                         "prediction cell: pass its dense_prediction_cell_json"):
        converter.load_tf1_weights(DeepLab(**dict(options, head="aspp", atrous_rates=())),
                                   prefix)
    model = DeepLab(**options)
    before = [w.numpy() for w in model.weights]
    with pytest.raises(InputError, match=r"variable decoder/\S+ \[.*\] has no place in this "
                                         r"model \(25 such variables\); .*"
                                         "decoder_output_stride=4"):
        converter.load_tf1_weights(model, prefix)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights))


def test_a_wrong_backbone_or_depth_names_the_flag(aspp_checkpoint, tmp_path):
    prefix, _ = aspp_checkpoint
    result = run_binary(BINARY, f"--tf1_checkpoint={prefix}", f"--output_dir={tmp_path}/a",
                        "--model_variant=xception_65")
    assert_one_line_error(result, "no xception_65 backbone variables", "--model_variant")
    result = run_binary(BINARY, f"--tf1_checkpoint={prefix}", f"--output_dir={tmp_path}/b",
                        "--depth_multiplier=0.5")
    assert_one_line_error(result, "MobilenetV2/Conv/weights has shape [3, 3, 3, 32]",
                          "[3, 3, 3, 16]", "--depth_multiplier")


def test_a_damaged_checkpoint_is_one_line(aspp_checkpoint, tmp_path):
    """A checkpoint whose data file was cut short (a broken download)."""
    import shutil

    prefix, _ = aspp_checkpoint
    damaged = tmp_path / "damaged"
    shutil.copytree(os.path.dirname(prefix), damaged)
    data = damaged / "model.ckpt.data-00000-of-00001"
    with open(data, "rb+") as f:
        f.truncate(os.path.getsize(data) // 2)
    result = run_binary(BINARY, f"--tf1_checkpoint={damaged}/model.ckpt",
                        f"--output_dir={tmp_path}/run")
    assert_one_line_error(result, "cannot read variable", f"{damaged}/model.ckpt")
    assert not (tmp_path / "run").exists()


def test_a_tf2_checkpoint_is_not_taken_for_a_tf1_one(tmp_path):
    import tensorflow as tf

    from deeplab_dpc.import_tf1_checkpoint import converter

    prefix = tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(tmp_path / "tf2"))
    assert not converter.is_tf1_checkpoint(prefix)
    result = run_binary(BINARY, f"--tf1_checkpoint={prefix}", f"--output_dir={tmp_path}/run")
    assert_one_line_error(result, "--tf1_checkpoint", "is a TF2 checkpoint")


# ----------------------------------------------------------------------- training
def test_training_starts_from_a_tf1_checkpoint(tmp_path):
    from deeplab_dpc import run_dir
    from deeplab_dpc.import_tf1_checkpoint import converter
    from deeplab_dpc.train import deeplab
    from tests.train import toy_data

    data = toy_data.write_toy_dataset(tmp_path / "data", num_images=2, num_shards=1)
    config = toy_data.tiny_config(tmp_path / "run", data, training_number_of_steps=1,
                                  model={"weight_decay": 0.0}, base_learning_rate=1e-12,
                                  fine_tune_batch_norm=False)
    model_options = dict(num_classes=toy_data.NUM_CLASSES, **config.model)
    prefix, values = _write(tmp_path, ref.model_listing(**model_options))
    import dataclasses

    config = dataclasses.replace(config, tf_initial_checkpoint=prefix)
    deeplab.train_deeplab(config, log=lambda *a: None)
    model, _ = run_dir.load_model(config.train_logdir)
    from deeplab_dpc.import_tf1_checkpoint import names

    for weight in model.weights:
        expected = values[names.tf1_name(weight.path, model.backbone_name)]
        np.testing.assert_allclose(weight.numpy(), expected, atol=1e-6, err_msg=weight.path)
    report = json.loads((tmp_path / "run" / converter.REPORT_FILE).read_text())
    assert len(report["used"]) == len(values) and report["unset"] == []


def test_an_imagenet_backbone_checkpoint_needs_noinitialize_last_layer(tmp_path):
    """A backbone-only checkpoint (plus its ImageNet classifier) sets the backbone;
    the head, decoder and logits are then left as initialised, and said so."""
    from deeplab_dpc.errors import InputError
    from deeplab_dpc.model import DeepLab
    from deeplab_dpc.train import initial_checkpoint

    options = dict(num_classes=3, backbone="mobilenet_v2", depth_multiplier=0.5, head="dpc",
                   decoder_output_stride=4)
    backbone = [(n, s) for n, s in ref.model_listing(**options) if n.startswith("MobilenetV2/")]
    prefix, values = _write(tmp_path, backbone,
                            {"MobilenetV2/Logits/Conv2d_1c_1x1/biases": (1001,)})
    model = DeepLab(**options)
    fresh = {w.path: w.numpy() for w in model.weights}
    with pytest.raises(InputError, match="no variables of the head, decoder or logits.*"
                                         "initialize_last_layer=False"):
        initial_checkpoint.restore_initial_weights(model, prefix)
    assert all(np.array_equal(fresh[w.path], w.numpy()) for w in model.weights)

    skipped, report = initial_checkpoint.restore_initial_weights(model, prefix, False)
    assert skipped == ["decoder", "dense_prediction_cell", "logits"]
    assert report.unused == {"global step": ["global_step"], "ImageNet classifier": [
        "MobilenetV2/Logits/Conv2d_1c_1x1/biases"]}
    backbone_paths = {w.path for w in model.backbone.weights}
    for weight in model.weights:
        if weight.path in backbone_paths:
            assert not np.array_equal(fresh[weight.path], weight.numpy())
        else:
            np.testing.assert_array_equal(fresh[weight.path], weight.numpy())
    assert len(report.unset) == len(model.weights) - len(backbone_paths)
    assert len(report.used) == len(values)
