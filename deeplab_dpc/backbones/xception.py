"""Modified ("aligned") Xception 41/65/71, as DeepLab's `core/xception.py`.

Layer names follow the reference scopes with '/' -> '_' and without the
`xception_module` level, e.g. reference
`xception_65/entry_flow/block1/unit_1/xception_module/separable_conv1_depthwise`
is `entry_flow_block1_unit_1_separable_conv1_depthwise`, its BatchNorm
`..._depthwise_BN`; `entry_flow/conv1_1` is `entry_flow_conv1_1`.
"""
import keras
from keras import layers

from deeplab_dpc.backbones._common import AtrousSchedule, Layers, fixed_padding, load_weights

VARIANTS = ("xception_41", "xception_65", "xception_71")
_ENTRY = {  # (depth, stride) per entry-flow block; every unit is 3 separable convs.
    "xception_41": ((128, 2), (256, 2), (728, 2)),
    "xception_65": ((128, 2), (256, 2), (728, 2)),
    "xception_71": ((128, 2), (256, 1), (256, 2), (728, 1), (728, 2)),
}
_MIDDLE_UNITS = {"xception_41": 8, "xception_65": 16, "xception_71": 16}
# The decoder endpoint: 2nd separable conv of the first entry block at stride 4.
_LOW_LEVEL_BLOCK = {"xception_41": "entry_flow_block2", "xception_65": "entry_flow_block2",
                    "xception_71": "entry_flow_block3"}
FEATURE_CHANNELS = 2048
LOW_LEVEL_CHANNELS = 256


def block_specs(name, multi_grid=(1, 1, 1)):
    """[(scope, depths, shortcut, units, stride, activation inside, unit rates)]."""
    specs = [(f"entry_flow_block{i}", (depth,) * 3, "conv", 1, stride, False, (1, 1, 1))
             for i, (depth, stride) in enumerate(_ENTRY[name], start=1)]
    specs.append(("middle_flow_block1", (728,) * 3, "sum", _MIDDLE_UNITS[name], 1, False,
                  (1, 1, 1)))
    specs.append(("exit_flow_block1", (728, 1024, 1024), "conv", 1, 2, False, (1, 1, 1)))
    specs.append(("exit_flow_block2", (1536, 1536, 2048), "none", 1, 1, True,
                  tuple(multi_grid)))
    return specs


def _xception_unit(x, ly, prefix, depths, shortcut, stride, rate, activation_inside,
                   unit_rates):
    """Three separable convs (stride on the last) plus the shortcut.

    Returns (unit output, output of separable_conv2's pointwise BN).
    """
    inputs = x
    for i, depth in enumerate(depths):
        name = f"{prefix}_separable_conv{i + 1}"
        conv_stride = stride if i == 2 else 1
        conv_rate = rate * unit_rates[i]
        if not activation_inside:
            x = layers.ReLU(name=name + "_relu")(x)
        if conv_stride > 1:
            x = layers.ZeroPadding2D((fixed_padding(conv_rate),) * 2, name=name + "_pad")(x)
        padding = "valid" if conv_stride > 1 else "same"
        x = ly.depthwise(conv_stride, conv_rate, padding, name=name + "_depthwise")(x)
        x = ly.bn(name + "_depthwise_BN")(x)
        if activation_inside:
            x = layers.ReLU(name=name + "_depthwise_relu")(x)
        x = ly.conv(depth, 1, name=name + "_pointwise")(x)
        x = ly.bn(name + "_pointwise_BN")(x)
        if activation_inside:
            x = layers.ReLU(name=name + "_pointwise_relu")(x)
        if i == 1:
            separable_conv2 = x
    if shortcut == "conv":
        # A 1x1 conv samples the same pixels with 'SAME' as with fixed padding.
        short = ly.conv(depths[-1], 1, stride, name=prefix + "_shortcut")(inputs)
        short = ly.bn(prefix + "_shortcut_BN")(short)
        x = layers.Add(name=prefix + "_add")([x, short])
    elif shortcut == "sum":
        x = layers.Add(name=prefix + "_add")([x, inputs])
    return x, separable_conv2


def build(name, output_stride=16, batch_norm_decay=0.9997, weight_decay=4e-5,
          weights=None, input_shape=(None, None, 3), multi_grid=(1, 1, 1)):
    """Builds `name` (one of VARIANTS); inputs are images already in [-1, 1].

    `weights`: None or a Keras weights file of this same network (e.g. one a
    checkpoint converter wrote); there are no Keras-published weights.
    """
    ly = Layers(batch_norm_decay, weight_decay)
    schedule = AtrousSchedule(output_stride)

    inputs = keras.Input(shape=input_shape, name="image")
    stride, _ = schedule.step(2)
    x = layers.ZeroPadding2D((fixed_padding(),) * 2, name="entry_flow_conv1_1_pad")(inputs)
    x = ly.conv(32, 3, stride, padding="valid", name="entry_flow_conv1_1")(x)
    x = ly.bn("entry_flow_conv1_1_BN")(x)
    x = layers.ReLU(name="entry_flow_conv1_1_relu")(x)
    x = ly.conv(64, 3, name="entry_flow_conv1_2")(x)
    x = ly.bn("entry_flow_conv1_2_BN")(x)
    x = layers.ReLU(name="entry_flow_conv1_2_relu")(x)

    for scope, depths, shortcut, units, block_stride, inside, rates in block_specs(
            name, multi_grid):
        for unit in range(1, units + 1):
            # As the reference, the atrous rule applies per unit: when the target
            # stride is reached, all three convs of the unit get the current rate.
            stride, rate = schedule.step(block_stride)
            x, separable_conv2 = _xception_unit(
                x, ly, f"{scope}_unit_{unit}", depths, shortcut, stride, rate, inside, rates)
            if scope == _LOW_LEVEL_BLOCK[name] and unit == 1:
                low_level = separable_conv2

    model = keras.Model(inputs, {"features": x, "low_level": low_level}, name=name)
    if weights is not None:
        load_weights(model, weights, name)
    return model
