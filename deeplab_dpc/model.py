"""The DeepLab model: raw RGB in [0, 255] -> backbone -> DPC or ASPP -> [decoder] -> logits.

`DeepLab` is a functional Keras model whose constructor takes plain arguments
and whose `get_config` returns them, cell spec included: a `.keras` file (and
the config the trainer writes beside its checkpoints) rebuilds the same
network, so nobody has to pass the cell JSON twice (tensorflow/models#5630).
"""
import keras

from deeplab_dpc import backbones
from deeplab_dpc import common
from deeplab_dpc.errors import InputError
from deeplab_dpc.layers import Decoder
from deeplab_dpc.layers.dpc import as_cell_spec
from deeplab_dpc.layers.heads import HEAD_NAMES, build_head, build_logits
from deeplab_dpc.spec import resolve_head

_MODEL_KWARGS = {"name", "trainable", "dtype"}  # what keras.Model itself takes


@keras.saving.register_keras_serializable(package=common.KERAS_PACKAGE)
class DeepLab(keras.Model):
    """DeepLab with a DPC or ASPP head.

    Args mirror the reference flags: `backbone` (`model_variant`), `head`
    (unset: `dpc` when a cell is given, else `aspp`, as the reference decides),
    `cell` (a CellSpec or the reference JSON list; with `head="dpc"` and no cell,
    the published Cityscapes cell), `atrous_rates` (default none: ASPP's 1x1 and
    image pooling only), `output_stride`, `decoder_output_stride` (None or 4),
    `depth_multiplier`, `divisible_by` (MobileNet-v2 channel rounding; None: 8 at
    depth 1.0, else 1, as the reference), `multi_grid` (Xception's exit-flow unit
    rates; None: 1, 1, 1), `image_pooling_crop_size`. `backbone_weights` ("imagenet" or an HDF5 path) is
    used once at construction and not kept in the config: the weights travel
    with the model.

    Outputs logits at the decoder's stride (or `output_stride` without decoder);
    `deeplab_dpc.layers.ops.resize_bilinear` brings them to the image size.
    """

    def __init__(self, num_classes, backbone="mobilenet_v2", head=None, cell=None,
                 atrous_rates=common.DEFAULT_ATROUS_RATES, aspp_with_separable_conv=True,
                 add_image_level_feature=True, image_pooling_crop_size=None,
                 output_stride=16, decoder_output_stride=None, depth_multiplier=1.0,
                 divisible_by=None, multi_grid=None, head_filters=256, dropout_rate=0.1,
                 batch_norm_decay=common.REFERENCE_BATCH_NORM_DECAY,
                 weight_decay=common.DEFAULT_WEIGHT_DECAY, backbone_weights=None,
                 **kwargs):
        unknown = sorted(set(kwargs) - _MODEL_KWARGS)
        if unknown:  # keras.Model would swallow a misspelt argument silently
            hint = " (ImageNet weights: backbone_weights=)" if "weights" in unknown else ""
            raise TypeError(f"DeepLab() got an unexpected keyword argument {unknown[0]!r}{hint}")
        head = resolve_head(head, cell)
        if decoder_output_stride not in (None, 4):
            raise InputError(
                f"decoder_output_stride {decoder_output_stride}: only 4 (the backbones' "
                "low-level endpoint) or none is supported", param="decoder_output_stride")
        if head == "dpc":
            cell = as_cell_spec(cell) if cell is not None else None
        shared = dict(batch_norm_decay=batch_norm_decay, weight_decay=weight_decay)

        images = keras.Input((None, None, 3), name="image")
        x = keras.layers.Rescaling(2.0 / 255.0, offset=-1.0, name="preprocess")(images)
        net = backbones.build_backbone(
            backbone, output_stride=output_stride, depth_multiplier=depth_multiplier,
            weights=backbone_weights, divisible_by=divisible_by, multi_grid=multi_grid,
            **shared)
        endpoints = net(x)
        head_layer = build_head(
            head, cell, atrous_rates, aspp_with_separable_conv, add_image_level_feature,
            image_pooling_crop_size, output_stride, head_filters, dropout_rate, **shared)
        features = head_layer(endpoints["features"])
        if decoder_output_stride:
            features = Decoder(head_filters, name="decoder", **shared)(
                [features, endpoints["low_level"]])
        logits = build_logits(num_classes, weight_decay)(features)
        super().__init__(inputs=images, outputs=logits, **kwargs)

        self.num_classes = num_classes
        self.backbone_name = backbone
        self.head = head
        self.cell = head_layer.cell if head == "dpc" else None
        self.atrous_rates = tuple(atrous_rates)
        self.aspp_with_separable_conv = aspp_with_separable_conv
        self.add_image_level_feature = add_image_level_feature
        self.image_pooling_crop_size = (
            tuple(image_pooling_crop_size) if image_pooling_crop_size else None)
        self.output_stride = output_stride
        self.decoder_output_stride = decoder_output_stride
        self.depth_multiplier = depth_multiplier
        self.divisible_by = divisible_by
        self.multi_grid = tuple(multi_grid) if multi_grid else None
        self.head_filters = head_filters
        self.dropout_rate = dropout_rate
        self.batch_norm_decay = batch_norm_decay
        self.weight_decay = weight_decay

    @property
    def backbone(self):
        """The backbone sub-model (what the proxy task's feature cache runs)."""
        return self.get_layer(self.backbone_name)

    @property
    def head_layer(self):
        return self.get_layer(HEAD_NAMES[self.head])

    def last_layers(self, logits_only=False):
        """Names of the layers the reference calls the last layers
        (`get_extra_layer_scopes`): what `initialize_last_layer=False` leaves at their
        initial values. The logits; unless `logits_only`, also the head and decoder."""
        last = ["logits"] if logits_only else ["logits", self.head_layer.name, "decoder"]
        return [name for name in last if name in {layer.name for layer in self.layers}]

    def get_config(self):
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "backbone": self.backbone_name,
            "head": self.head,
            "cell": self.cell.to_reference() if self.cell is not None else None,
            "atrous_rates": list(self.atrous_rates),
            "aspp_with_separable_conv": self.aspp_with_separable_conv,
            "add_image_level_feature": self.add_image_level_feature,
            "image_pooling_crop_size": (list(self.image_pooling_crop_size)
                                        if self.image_pooling_crop_size else None),
            "output_stride": self.output_stride,
            "decoder_output_stride": self.decoder_output_stride,
            "depth_multiplier": self.depth_multiplier,
            "divisible_by": self.divisible_by,
            "multi_grid": list(self.multi_grid) if self.multi_grid else None,
            "head_filters": self.head_filters,
            "dropout_rate": self.dropout_rate,
            "batch_norm_decay": self.batch_norm_decay,
            "weight_decay": self.weight_decay,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
