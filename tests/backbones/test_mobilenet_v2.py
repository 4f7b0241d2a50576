"""MobileNet-v2 backbone: sizes against hand arithmetic and the reference's
figures, output strides, and loading keras.applications' legacy HDF5 weights."""
import math

import h5py
import keras
import numpy as np
import pytest

from deeplab_dpc.backbones import build_backbone, feature_channels, low_level_channels
from deeplab_dpc.backbones._common import load_weights
from deeplab_dpc.errors import InputError

# Reference figures (trainable parameters; total includes BN moving statistics).
REFERENCE_TRAINABLE = {1.0: 1_811_712, 0.5: 477_088}
REFERENCE_TOTAL_DM1 = 1_843_264


def _round(v, divisor):
    """Nearest multiple of `divisor` (at least `divisor`), at most 10% down."""
    r = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return r + divisor if r < 0.9 * v else r


def _hand_count(dm):
    """(trainable params, total params, feature ch, low-level ch) from the table.

    DeepLab rounds channels to multiples of 8 at dm 1.0 and to 1 otherwise;
    expansions (input * 6) to multiples of 8. Conv kernels have no bias; every
    conv has a BN (gamma, beta trainable; mean, variance not).
    """
    div = 8 if dm == 1.0 else 1
    table = [(1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3),
             (6, 320, 1)]
    c_in = _round(32 * dm, div)
    weights, bn_channels = 3 * 3 * 3 * c_in, c_in
    block = 0
    for t, c, n in table:
        c_out = _round(c * dm, div)
        for _ in range(n):
            e = c_in if t == 1 else _round(c_in * t, 8)
            if t != 1:
                weights += c_in * e
                bn_channels += e
            weights += 9 * e + e * c_out
            bn_channels += e + c_out
            if block == 2:  # low level: block_2's depthwise output
                low_level = e
            c_in = c_out
            block += 1
    return weights + 2 * bn_channels, weights + 4 * bn_channels, c_in, low_level


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture(scope="module")
def deeplab_models():
    """Our backbone at depth multipliers 1.0 and 0.5, default settings."""
    return {dm: build_backbone("mobilenet_v2", depth_multiplier=dm) for dm in (1.0, 0.5)}


def test_param_counts_and_channels(deeplab_models):
    for dm, expected in REFERENCE_TRAINABLE.items():
        trainable, total, features, low = _hand_count(dm)
        assert trainable == expected
        model = deeplab_models[dm]
        assert _trainable(model) == expected
        assert model.output["features"].shape[-1] == feature_channels("mobilenet_v2", dm)
        assert model.output["low_level"].shape[-1] == low_level_channels("mobilenet_v2", dm)
        assert (feature_channels("mobilenet_v2", dm), low_level_channels("mobilenet_v2", dm)) \
            == (features, low)
        if dm == 1.0:
            assert total == REFERENCE_TOTAL_DM1 == model.count_params()
            assert (features, low) == (320, 144)
        else:
            assert (features, low) == (160, 72)


# Nominal strides: Conv1 2, block_1 2, block_3 2, block_6 2, block_13 2. Once the
# target is reached a strided depthwise gets stride 1 and the current rate, and
# the rate doubles after it: (stride, rate) of block_6, block_13, block_16.
@pytest.mark.parametrize("output_stride,expected", [
    (8, ((1, 1), (1, 2), (1, 4))),
    (16, ((2, 1), (1, 1), (1, 2))),
    (32, ((2, 1), (2, 1), (1, 1))),
])
def test_output_shapes_and_atrous_rates(output_stride, expected):
    h, w = 97, 129
    model = build_backbone("mobilenet_v2", output_stride=output_stride, input_shape=(h, w, 3))
    assert model.output["features"].shape == (
        None, math.ceil(h / output_stride), math.ceil(w / output_stride), 320)
    assert model.output["low_level"].shape == (None, 25, 33, 144)  # ceil(97/4), ceil(129/4)
    assert model.output["low_level"]._keras_history.operation.name == "block_2_depthwise_relu"
    for block, (stride, rate) in zip((6, 13, 16), expected):
        config = model.get_layer(f"block_{block}_depthwise").get_config()
        assert (config["strides"], config["dilation_rate"]) == ((stride,) * 2, (rate,) * 2)


def test_regularisation_and_batch_norm(deeplab_models):
    model = deeplab_models[1.0]  # weight decay 4e-5, BN decay 0.9997
    # Conv1 + 16 expand + 17 project convs are regularised; 17 depthwise are not.
    assert len(model.losses) == 34
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            assert layer.depthwise_regularizer is None
        elif isinstance(layer, keras.layers.Conv2D):
            assert layer.kernel_regularizer.l2 == pytest.approx(2e-5)
        elif isinstance(layer, keras.layers.BatchNormalization):
            assert (layer.momentum, layer.epsilon) == (0.9997, 1e-3)


def _write_legacy_h5(model, path):
    """The HDF5 layout of keras.applications' published `*_no_top.h5` files."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([layer.name.encode() for layer in model.layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in model.layers:
            group = f.create_group(layer.name)
            variables = layer.trainable_weights + layer.non_trainable_weights
            names = [f"{layer.name}/{v.name}:0" for v in variables]
            group.attrs["weight_names"] = np.array([n.encode() for n in names], dtype="S")
            for name, v in zip(names, variables):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(v))


@pytest.fixture(scope="module")
def keras_models(tmp_path_factory):
    """keras.applications MobileNetV2 at an even and an odd static size, equal
    random weights (BN statistics too), and its legacy HDF5 weights file."""
    rng = np.random.default_rng(0)
    models = {}
    for size in [(64, 96), (65, 97)]:
        full = keras.applications.MobileNetV2(weights=None, include_top=False,
                                              input_shape=size + (3,))
        models[size] = full
    even = models[(64, 96)]
    for layer in even.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c),
                               rng.normal(0, 0.2, c), rng.uniform(0.5, 1.5, c)])
    models[(65, 97)].set_weights(even.get_weights())
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2_no_top.h5"
    _write_legacy_h5(even, path)
    return models, path


def test_loads_keras_applications_weights(keras_models, tmp_path):
    models, path = keras_models
    ours = build_backbone("mobilenet_v2", output_stride=32, weights=str(path))
    rng = np.random.default_rng(1)
    for (h, w), full in models.items():
        reference = keras.Model(full.input, {
            "features": full.get_layer("block_16_project_BN").output,
            "low_level": full.get_layer("block_2_depthwise_relu").output})
        assert _trainable(reference) == REFERENCE_TRAINABLE[1.0]
        assert reference.count_params() == REFERENCE_TOTAL_DM1
        x = rng.uniform(-1, 1, (1, h, w, 3)).astype("float32")
        expected = reference(x)
        got = ours(x)
        for key in ("features", "low_level"):
            e, g = (keras.ops.convert_to_numpy(t[key]) for t in (expected, got))
            assert g.shape == e.shape
            assert e.std() > 0.1  # a meaningful comparison, not all zeros
            np.testing.assert_allclose(g, e, atol=1e-4)
    # Keras 3's own format round-trips too (what a converter would write).
    ours.save_weights(tmp_path / "ours.weights.h5")
    again = build_backbone("mobilenet_v2", output_stride=32,
                           weights=str(tmp_path / "ours.weights.h5"))
    np.testing.assert_array_equal(again(x)["features"], ours(x)["features"])


def test_weight_file_errors(tmp_path, keras_models, deeplab_models):
    missing = tmp_path / "nope.h5"
    with pytest.raises(InputError, match="nope.h5"):
        build_backbone("mobilenet_v2", weights=str(missing))
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="garbage.h5"):
        build_backbone("mobilenet_v2", weights=str(garbage))
    # A file for other channel counts must fail loudly, not load partly.
    _, path = keras_models
    with pytest.raises(InputError, match="does not fit"):
        load_weights(deeplab_models[0.5], str(path), "mobilenet_v2")


def test_keras_channel_rounding_option():
    """divisible_by=8 rounds as keras.applications (alpha 0.5: 480,320 trainable,
    3,232 more than DeepLab's 477,088 because block_1/2 get 16 channels, not 12)."""
    ours = build_backbone("mobilenet_v2", depth_multiplier=0.5, divisible_by=8)
    keras_net = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.5,
                                               input_shape=(64, 64, 3))
    assert _trainable(ours) == 480_320
    for layer in ours.layers[1:]:  # after the input layer
        theirs = keras_net.get_layer(layer.name)
        assert [w.shape for w in layer.weights] == [w.shape for w in theirs.weights]
    for dm in (0.6, 0.5):  # unpublished alpha; DeepLab rounding cannot fit
        with pytest.raises(InputError, match="ImageNet"):
            build_backbone("mobilenet_v2", depth_multiplier=dm, weights="imagenet")


def test_registry_errors():
    with pytest.raises(InputError, match="unknown backbone"):
        build_backbone("resnet_50")
    with pytest.raises(InputError, match="output_stride"):
        build_backbone("mobilenet_v2", output_stride=4)
    with pytest.raises(InputError, match="unknown backbone"):
        feature_channels("nope")
