"""The tests' stand-in for the reference: TF1 checkpoints written by a `tf.compat.v1`
Saver under the reference's variable names, and the head, decoder and logits
computed with plain `tf.nn` ops straight from those names (no Keras layer).

Batch-norm variables get disjoint value ranges, so that a weight that took a
gamma where a beta belongs is seen by its value alone.
"""
import json
import os

import numpy as np

LISTINGS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures",
                        "tf1_variables")
BN_RANGES = {"gamma": (0.75, 1.25), "beta": (0.1, 0.3), "moving_mean": (-0.3, -0.1),
             "moving_variance": (1.5, 2.5)}
HEAD_EPSILON = 1e-5  # the reference's head and decoder batch norm


def listing(name):
    """[(TF1 name, shape)] of a variable listing of an original TF1 graph."""
    with open(os.path.join(LISTINGS, name)) as f:
        return [(n, tuple(shape)) for n, shape in json.load(f)]


def model_listing(**model):
    """(name, shape) of every weight of `DeepLab(**model)` by the name table, for models
    without a listing of the original graph (so only the forward pass checks the
    table there)."""
    from deeplab_dpc.import_tf1_checkpoint import names
    from deeplab_dpc.model import DeepLab

    deeplab = DeepLab(**model)
    return [(names.tf1_name(w.path, deeplab.backbone_name), tuple(w.shape))
            for w in deeplab.weights]


def random_values(variables, seed=0):
    """{name: float32 array} for [(name, shape)]: batch norm in its kind's range,
    kernels with a fan-in scale (activations stay near 1), biases small."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in variables:
        stat = name.rsplit("/", 1)[-1]
        if stat in BN_RANGES:
            low, high = BN_RANGES[stat]
            value = rng.uniform(low, high, shape)
        elif stat == "biases":
            value = rng.uniform(-0.1, 0.1, shape)
        else:
            fan_in = np.prod(shape[:-1]) if stat == "weights" else np.prod(shape[:2])
            value = rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)
        values[name] = value.astype(np.float32)
    return values


def write_tf1_checkpoint(prefix, values, global_step=None):
    """Saves `values` ({name: array}) as the reference does: graph-mode variables
    and a `tf.compat.v1.train.Saver` (no object graph). Returns the prefix."""
    import tensorflow as tf

    v1 = tf.compat.v1
    os.makedirs(os.path.dirname(str(prefix)), exist_ok=True)
    with tf.Graph().as_default():
        variables = {name: v1.get_variable(name, shape=value.shape, dtype=value.dtype,
                                           initializer=v1.zeros_initializer(),
                                           use_resource=False)
                     for name, value in values.items()}
        if global_step is not None:
            variables["global_step"] = v1.train.get_or_create_global_step()
        saver = v1.train.Saver(variables)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for name, value in values.items():
                variables[name].load(value, session)
            if global_step is not None:
                variables["global_step"].load(global_step, session)
            return saver.save(session, str(prefix), write_meta_graph=False)


# ------------------------------------------------------ the head from the TF1 names
def _tf():
    import tensorflow as tf

    return tf


def batch_norm(x, v, scope):
    tf = _tf()
    return tf.nn.batch_normalization(
        x, v[f"{scope}/BatchNorm/moving_mean"], v[f"{scope}/BatchNorm/moving_variance"],
        offset=v[f"{scope}/BatchNorm/beta"], scale=v[f"{scope}/BatchNorm/gamma"],
        variance_epsilon=HEAD_EPSILON)


def conv_bn_relu(x, v, scope):
    """slim.conv2d 1x1 with batch norm: `{scope}/weights`, `{scope}/BatchNorm/*`."""
    tf = _tf()
    return tf.nn.relu(batch_norm(tf.nn.conv2d(x, v[f"{scope}/weights"], 1, "SAME"), v, scope))


def split_separable(x, v, scope, rate):
    """The reference's split_separable_conv2d: `{scope}_depthwise`, `{scope}_pointwise`."""
    tf = _tf()
    x = tf.nn.depthwise_conv2d(x, v[f"{scope}_depthwise/depthwise_weights"], [1, 1, 1, 1],
                               "SAME", dilations=list(rate))
    x = tf.nn.relu(batch_norm(x, v, f"{scope}_depthwise"))
    return conv_bn_relu(x, v, f"{scope}_pointwise")


def resize(x, size):
    tf = _tf()
    return tf.compat.v1.image.resize_bilinear(x, size, align_corners=True)


def dense_prediction_cell(features, v, cell):
    """The cell from its reference JSON list; pooling grids must divide the map."""
    tf = _tf()
    size = features.shape[1:3]
    outputs = []
    for i, branch in enumerate(cell):
        x = features if branch["input"] < 0 else outputs[branch["input"]]
        scope = f"meta_architecture/branch{i}"
        if branch["op"] == "pyramid_pooling":
            window = [size[0] // branch["grid_size"][0], size[1] // branch["grid_size"][1]]
            x = tf.nn.avg_pool2d(x, window, window, "VALID")
            x = resize(conv_bn_relu(x, v, scope), size)
        elif branch["kernel"] in (1, [1, 1]):
            x = conv_bn_relu(x, v, scope)
        else:
            x = split_separable(x, v, scope, branch["rate"])
        outputs.append(x)
    return conv_bn_relu(tf.concat(outputs, -1), v, "meta_architecture/concat_projection")


def aspp(features, v, rates=(), pool_window=None):
    """Image pooling (global, or the reference's stride-1 window derived from
    `image_pooling_crop_size`), 1x1, separable atrous branches, concat projection."""
    tf = _tf()
    pooled = (tf.nn.avg_pool2d(features, pool_window, 1, "VALID") if pool_window else
              tf.reduce_mean(features, [1, 2], keepdims=True))
    branches = [resize(conv_bn_relu(pooled, v, "image_pooling"), features.shape[1:3]),
                conv_bn_relu(features, v, "aspp0")]
    branches += [split_separable(features, v, f"aspp{i}", (r, r))
                 for i, r in enumerate(rates, start=1)]
    return conv_bn_relu(tf.concat(branches, -1), v, "concat_projection")


def decoder(head, low_level, v):
    tf = _tf()
    low_level = conv_bn_relu(low_level, v, "decoder/feature_projection0")
    x = tf.concat([resize(head, low_level.shape[1:3]), low_level], -1)
    x = split_separable(x, v, "decoder/decoder_conv0", (1, 1))
    return split_separable(x, v, "decoder/decoder_conv1", (1, 1))


def logits(x, v):
    tf = _tf()
    return tf.nn.conv2d(x, v["logits/semantic/weights"], 1, "SAME") + v["logits/semantic/biases"]
