"""Parameters and multiply-adds of a model or a head, by the paper's conventions.

Multiply-adds count convolutions only (as the paper does): for every Conv2D and
DepthwiseConv2D, output positions x kernel weights. Shapes come from tracing
the model with `tf.function` at a fixed input size, so nothing is computed and
dilated convs count their real output, not TF's space-to-batch rewrite.
"""
import dataclasses

import keras
import numpy as np
import tensorflow as tf

CONV_TYPES = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


@dataclasses.dataclass(frozen=True)
class ConvCost:
    path: str  # e.g. "dense_prediction_cell/branch0/depthwise"
    params: int  # kernel weights (no bias, no BN)
    macs: int


def _conv_layers(model):
    return [l for l in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(l, CONV_TYPES)]


def _traced_costs(model, input_shape):
    """[(layer, ConvCost)] for every conv layer of `model` on the path from an input
    of `input_shape`, from one trace."""
    shapes = {}
    layers = _conv_layers(model)
    for layer in layers:
        original = layer.call

        def recording_call(*args, _layer=layer, _original=original, **kwargs):
            out = _original(*args, **kwargs)
            shapes[id(_layer)] = tuple(out.shape)
            return out

        layer.call = recording_call
    try:
        tf.function(lambda x: model(x, training=False)).get_concrete_function(
            tf.TensorSpec(input_shape, tf.float32))
    finally:
        for layer in layers:
            del layer.call
    costs = []
    for layer in layers:
        if id(layer) not in shapes:
            continue  # not on the path from this input
        kernel = layer.kernel
        params = int(np.prod(kernel.shape))
        batch_positions = int(np.prod(shapes[id(layer)][:-1]))
        # Conv2D: kh*kw*cin*cout per position; depthwise: kh*kw*cin*mult.
        costs.append((layer, ConvCost(kernel.path.rsplit("/", 1)[0], params,
                                      batch_positions * params)))
    return costs


def conv_costs(model, input_shape):
    """One ConvCost per conv layer of `model` called on a tensor of `input_shape`."""
    return [cost for _, cost in _traced_costs(model, input_shape)]


def count_params(weights):
    return int(sum(np.prod(w.shape) for w in weights))


@dataclasses.dataclass(frozen=True)
class HeadComplexity:
    """A head's cost, with the projection both left out (the paper) and included."""

    branch_params: int  # conv weights of the branches: the paper's parameter figure
    branch_macs: int  # their multiply-adds: the paper's MAdds figure
    projection_params: int
    projection_macs: int
    trainable_params: int  # every trainable weight: BN and projection included
    feature_shape: tuple


def head_complexity(head_layer, feature_shape):
    """Costs of a DPC/ASPP layer on backbone features of `feature_shape` (N, H, W, C)."""
    inputs = keras.Input(feature_shape[1:], batch_size=feature_shape[0])
    wrapper = keras.Model(inputs, head_layer(inputs))
    costs = conv_costs(wrapper, feature_shape)
    proj = [c for c in costs if "concat_projection" in c.path]
    branches = [c for c in costs if "concat_projection" not in c.path]
    return HeadComplexity(
        branch_params=sum(c.params for c in branches),
        branch_macs=sum(c.macs for c in branches),
        projection_params=sum(c.params for c in proj),
        projection_macs=sum(c.macs for c in proj),
        trainable_params=count_params(head_layer.trainable_weights),
        feature_shape=tuple(feature_shape))


@dataclasses.dataclass(frozen=True)
class ModelComplexity:
    image_size: tuple
    feature_shape: tuple
    backbone_params: int
    backbone_macs: int
    total_params: int  # trainable
    total_macs: int
    head: HeadComplexity


def model_complexity(model, image_size):
    """Costs of a `DeepLab` model on one image of `image_size` (H, W)."""
    shape = (1, *image_size, 3)
    backbone = model.backbone
    # One trace of the whole model (a dry run of Xception-71 costs seconds per trace);
    # the backbone's share is its own conv layers.
    costs = _traced_costs(model, shape)
    in_backbone = {id(layer) for layer in _conv_layers(backbone)}
    stride = model.output_stride
    features = (1, (image_size[0] - 1) // stride + 1, (image_size[1] - 1) // stride + 1,
                int(backbone.output["features"].shape[-1]))
    head = model.head_layer
    return ModelComplexity(
        image_size=tuple(image_size),
        feature_shape=features,
        backbone_params=count_params(backbone.trainable_weights),
        backbone_macs=sum(c.macs for layer, c in costs if id(layer) in in_backbone),
        total_params=count_params(model.trainable_weights),
        total_macs=sum(c.macs for _, c in costs),
        head=head_complexity(type(head).from_config(head.get_config()), features))


@dataclasses.dataclass(frozen=True)
class PaperRow:
    backbone: str
    head: str
    paper_params: float  # millions
    paper_madds: float  # billions
    paper_miou: float
    ours: HeadComplexity


# Table 1 of the paper: Cityscapes val, output stride 16, the module alone.
PAPER_TABLE1 = (
    ("mobilenet_v2", "aspp", 0.25, 2.82, 73.97),
    ("mobilenet_v2", "dpc", 0.36, 3.00, 75.38),
    ("xception_71", "aspp", 1.59, 18.12, 80.25),
    ("xception_71", "dpc", 0.81, 6.84, 80.85),
)


def backbone_feature_shape(backbone, image_size, output_stride=16, depth_multiplier=1.0):
    """The backbone's feature shape for one image, from tracing it (no compute)."""
    from deeplab_dpc import backbones

    net = backbones.build_backbone(backbone, output_stride=output_stride,
                                   depth_multiplier=depth_multiplier)
    fn = tf.function(lambda x: net(x)["features"])
    return tuple(fn.get_concrete_function(
        tf.TensorSpec((1, *image_size, 3), tf.float32)).output_shapes)


def paper_table1_rows(image_size=(1025, 2049), output_stride=16):
    """Our counts for the four rows of Table 1: the published DPC and ASPP (6/12/18)."""
    from deeplab_dpc.layers import ASPP, DensePredictionCell

    rows = []
    shapes = {}
    for backbone, head, params, madds, miou in PAPER_TABLE1:
        if backbone not in shapes:
            shapes[backbone] = backbone_feature_shape(backbone, image_size, output_stride)
        layer = (DensePredictionCell(output_stride=output_stride) if head == "dpc"
                 else ASPP(atrous_rates=(6, 12, 18), output_stride=output_stride))
        rows.append(PaperRow(backbone, head, params, madds, miou,
                             head_complexity(layer, shapes[backbone])))
    return rows


def preset_rows(image_size=(1025, 2049), names=None):
    """[(name, Preset, ModelComplexity)] of the model presets (all, or `names`)."""
    from deeplab_dpc import presets
    from deeplab_dpc.model import DeepLab

    rows = []
    for name in names or presets.PRESETS:
        preset = presets.get_preset(name)
        model = DeepLab(**preset.model)
        rows.append((name, preset, model_complexity(model, image_size)))
        keras.backend.clear_session()
    return rows
