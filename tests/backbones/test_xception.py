"""Modified Xception 41/65/71: sizes against hand arithmetic and the
reference's figure, output strides, atrous rates, padding and ReLU placement."""
import math

import keras
import numpy as np
import pytest

from deeplab_dpc.backbones import build_backbone, feature_channels, low_level_channels
from deeplab_dpc.errors import InputError

REFERENCE_XCEPTION_71_TRAINABLE = 40_289_736

# Entry-flow (depth, stride) per block; all have a 1x1 conv shortcut.
ENTRY = {
    "xception_41": [(128, 2), (256, 2), (728, 2)],
    "xception_65": [(128, 2), (256, 2), (728, 2)],
    "xception_71": [(128, 2), (256, 1), (256, 2), (728, 1), (728, 2)],
}
MIDDLE_UNITS = {"xception_41": 8, "xception_65": 16, "xception_71": 16}


def _hand_count(name):
    """(trainable params, number of L2-regularised kernels) from the block table.

    Separable conv c_in -> d: depthwise 9*c_in + BN 2*c_in, pointwise c_in*d +
    BN 2*d. A 'conv' shortcut adds c_in*d_last + BN. No biases.
    """
    params = 3 * 3 * 3 * 32 + 2 * 32 + 3 * 3 * 32 * 64 + 2 * 64  # stem
    regularised = 2
    units = ([((d,) * 3, True) for d, _ in ENTRY[name]]
             + [((728,) * 3, False)] * MIDDLE_UNITS[name]
             + [((728, 1024, 1024), True), ((1536, 1536, 2048), False)])
    c = 64
    for depths, conv_shortcut in units:
        c_in = c
        for d in depths:
            params += 9 * c + 2 * c + c * d + 2 * d
            c = d
        regularised += 3
        if conv_shortcut:
            params += c_in * depths[-1] + 2 * depths[-1]
            regularised += 1
    return params, regularised


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_hand_counts():
    assert _hand_count("xception_71")[0] == REFERENCE_XCEPTION_71_TRAINABLE
    assert _hand_count("xception_65")[0] == 37_867_312
    assert _hand_count("xception_41")[0] == 24_920_560
    for name in ENTRY:
        assert feature_channels(name) == 2048
        assert low_level_channels(name) == 256


# (variant, output stride, (stride, rate) of the entry block before the middle
# flow, exit_flow_block1, exit_flow_block2), by slim's rule: the stem takes 2,
# each strided block 2; once the target is reached a strided unit gets stride 1
# and the current rate, and the rate doubles after it.
CASES = [
    ("xception_41", 8, (1, 1), (1, 2), (1, 4)),
    ("xception_65", 32, (2, 1), (2, 1), (1, 1)),
    ("xception_71", 16, (2, 1), (1, 1), (1, 2)),
]


@pytest.mark.parametrize("name,output_stride,last_entry,exit1,exit2", CASES)
def test_variant(name, output_stride, last_entry, exit1, exit2):
    model = build_backbone(name, output_stride=output_stride)  # input (None, None, 3)
    params, regularised = _hand_count(name)
    assert _trainable(model) == params
    assert len(model.losses) == regularised
    h, w = 97, 129  # odd: sizes are ceil(h / stride)
    out = model(np.random.default_rng(0).uniform(-1, 1, (1, h, w, 3)).astype("float32"))
    assert tuple(out["features"].shape) == (
        1, math.ceil(h / output_stride), math.ceil(w / output_stride), 2048)
    assert tuple(out["low_level"].shape) == (1, 25, 33, 256)
    assert np.isfinite(keras.ops.convert_to_numpy(out["features"])).all()
    low_block = "entry_flow_block3" if name == "xception_71" else "entry_flow_block2"
    assert (model.output["low_level"]._keras_history.operation.name
            == f"{low_block}_unit_1_separable_conv2_pointwise_BN")

    last = f"entry_flow_block{len(ENTRY[name])}_unit_1"
    for prefix, (stride, rate) in [(last, last_entry), ("exit_flow_block1_unit_1", exit1)]:
        conv3 = model.get_layer(prefix + "_separable_conv3_depthwise").get_config()
        assert (conv3["strides"], conv3["dilation_rate"]) == ((stride,) * 2, (rate,) * 2)
        assert model.get_layer(prefix + "_shortcut").get_config()["strides"] == (stride,) * 2
    for i in (1, 2, 3):
        conv = model.get_layer(f"exit_flow_block2_unit_1_separable_conv{i}_depthwise")
        assert conv.get_config()["dilation_rate"] == (exit2[1],) * 2

    # Strided convs use the reference's fixed padding (1, 1) + VALID, not SAME.
    assert model.get_layer("entry_flow_conv1_1_pad").get_config()["padding"] == ((1, 1), (1, 1))
    assert model.get_layer("entry_flow_conv1_1").get_config()["padding"] == "valid"
    assert model.get_layer("entry_flow_block1_unit_1_separable_conv3_depthwise") \
        .get_config()["padding"] == "valid"

    # ReLU before each separable conv, except exit block2 (ReLU inside).
    names = {layer.name for layer in model.layers}
    assert "middle_flow_block1_unit_1_separable_conv1_relu" in names
    assert "exit_flow_block2_unit_1_separable_conv1_relu" not in names
    assert "exit_flow_block2_unit_1_separable_conv1_depthwise_relu" in names
    assert f"middle_flow_block1_unit_{MIDDLE_UNITS[name]}_add" in names
    assert "exit_flow_block2_unit_1_add" not in names

    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            assert layer.depthwise_regularizer is None
        elif isinstance(layer, keras.layers.BatchNormalization):
            assert (layer.momentum, layer.epsilon, layer.scale) == (0.9997, 1e-3, True)


def test_errors():
    with pytest.raises(InputError, match="depth_multiplier"):
        build_backbone("xception_65", depth_multiplier=0.5)
    with pytest.raises(InputError, match="xception_71"):
        build_backbone("xception_71", weights="imagenet")
    with pytest.raises(InputError, match="output_stride"):
        build_backbone("xception_71", output_stride=64)
