"""MobileNet-v2 as DeepLab uses it: slim's network up to `layer_18`.

That is keras.applications.MobileNetV2 without the final 1280-channel
`Conv_1`, with TF 'SAME' padding throughout (for static even or odd input
sizes Keras's explicit ZeroPadding gives the same result; for unknown sizes
Keras assumes even ones). Layer names are keras.applications' so that its
published ImageNet weights load by name.
"""
import keras
from keras import layers

from deeplab_dpc.backbones._common import AtrousSchedule, Layers, load_weights
from deeplab_dpc.errors import InputError

# (expansion, output channels, units, stride of the first unit); the paper's table.
BLOCKS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
# slim `layer_4/depthwise_output` = Keras block_2's depthwise ReLU (stride 4).
LOW_LEVEL_BLOCK = 2
LOW_LEVEL_LAYER = "block_2_depthwise_relu"

IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/"
               "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_"
               "{alpha}_224_no_top.h5")


def make_divisible(value, divisor, min_value=None):
    """slim's channel rounding: nearest multiple, never more than 10% down."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _depth_fn(depth_multiplier, divisible_by):
    # DeepLab's feature_extractor rounds to multiples of 8 (min 8) only at
    # depth multiplier 1.0, and to whole channels (min 1) otherwise.
    if divisible_by is None:
        divisible_by = 8 if depth_multiplier == 1.0 else 1
    return lambda c: make_divisible(c * depth_multiplier, divisible_by, divisible_by)


def _expansion(in_channels, factor):
    # slim's expand_input_by_factor always rounds to multiples of 8.
    return in_channels if factor == 1 else make_divisible(in_channels * factor, 8)


def feature_channels(depth_multiplier=1.0, divisible_by=None):
    return _depth_fn(depth_multiplier, divisible_by)(BLOCKS[-1][1])


def low_level_channels(depth_multiplier=1.0, divisible_by=None):
    return _expansion(_depth_fn(depth_multiplier, divisible_by)(BLOCKS[1][1]), BLOCKS[1][0])


def _inverted_residual(x, ly, block_id, expansion, out_channels, stride, rate):
    """Returns (block output, depthwise ReLU output)."""
    inputs = x
    in_channels = x.shape[-1]
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    if expansion != 1:
        x = ly.conv(_expansion(in_channels, expansion), 1, name=prefix + "expand")(x)
        x = ly.bn(prefix + "expand_BN")(x)
        x = layers.ReLU(6.0, name=prefix + "expand_relu")(x)
    x = ly.depthwise(stride, rate, name=prefix + "depthwise")(x)
    x = ly.bn(prefix + "depthwise_BN")(x)
    depthwise_out = x = layers.ReLU(6.0, name=prefix + "depthwise_relu")(x)
    x = ly.conv(out_channels, 1, name=prefix + "project")(x)
    x = ly.bn(prefix + "project_BN")(x)
    if stride == 1 and in_channels == out_channels:
        x = layers.Add(name=prefix + "add")([inputs, x])
    return x, depthwise_out


def build(output_stride=16, depth_multiplier=1.0, batch_norm_decay=0.9997,
          weight_decay=4e-5, weights=None, input_shape=(None, None, 3),
          divisible_by=None):
    """Builds the backbone; inputs are images already scaled to [-1, 1].

    `divisible_by=8` rounds channels like keras.applications at every depth
    multiplier (needed to load its ImageNet weights at alpha != 1.0); the
    default follows DeepLab (8 at depth multiplier 1.0, else 1).
    """
    if depth_multiplier <= 0:
        raise InputError(f"depth_multiplier must be positive, got {depth_multiplier}",
                         param="depth_multiplier")
    if weights == "imagenet":
        _check_imagenet(depth_multiplier, divisible_by)
    depth = _depth_fn(depth_multiplier, divisible_by)
    ly = Layers(batch_norm_decay, weight_decay)
    schedule = AtrousSchedule(output_stride)

    inputs = keras.Input(shape=input_shape, name="image")
    stride, _ = schedule.step(2)
    x = ly.conv(depth(STEM_CHANNELS), 3, stride, name="Conv1")(inputs)
    x = ly.bn("bn_Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)

    block_id = 0
    for expansion, channels, units, first_stride in BLOCKS:
        for unit in range(units):
            stride, rate = schedule.step(first_stride if unit == 0 else 1)
            x, depthwise_out = _inverted_residual(
                x, ly, block_id, expansion, depth(channels), stride, rate)
            if block_id == LOW_LEVEL_BLOCK:
                low_level = depthwise_out
            block_id += 1

    model = keras.Model(inputs, {"features": x, "low_level": low_level},
                        name="mobilenet_v2")
    if weights == "imagenet":
        weights = _download(depth_multiplier)
    if weights is not None:
        load_weights(model, weights, "mobilenet_v2")
    return model


def _check_imagenet(depth_multiplier, divisible_by):
    """Fails before downloading a file that does not exist or cannot fit."""
    if depth_multiplier not in IMAGENET_ALPHAS:
        raise InputError(f"no mobilenet_v2 ImageNet weights for depth_multiplier "
                         f"{depth_multiplier}; published: {IMAGENET_ALPHAS}",
                         param="depth_multiplier")
    if depth_multiplier != 1.0 and divisible_by != 8:
        raise InputError("mobilenet_v2 ImageNet weights at depth_multiplier "
                         f"{depth_multiplier} need divisible_by=8 (keras.applications' "
                         "channel rounding; DeepLab's own rounds to 1 channel)")


def _download(depth_multiplier):
    """keras.applications' ImageNet file for this alpha (needs internet)."""
    url = WEIGHTS_URL.format(alpha=float(depth_multiplier))
    try:
        return keras.utils.get_file(url.rsplit("/", 1)[1], url, cache_subdir="models")
    except Exception as e:  # noqa: BLE001 - any download failure is the user's to fix
        raise InputError(f"cannot download mobilenet_v2 ImageNet weights {url}: "
                         f"{' '.join(str(e).split())}") from None
