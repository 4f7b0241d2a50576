"""The head and logits that `DeepLab` puts on a backbone, built in one place.

The search's proxy task trains exactly these layers on cached backbone features
(paper Sec. 3.3), so both call `build_head` and `build_logits`: a cell scored on
the proxy is the same network, with the same names, initializers and
regularizers, as the one `DeepLab` trains end to end.
"""
import keras

from deeplab_dpc import common
from deeplab_dpc.layers.aspp import ASPP
from deeplab_dpc.layers.dpc import DensePredictionCell

HEAD_NAMES = {"dpc": "dense_prediction_cell", "aspp": "aspp"}


def build_head(head="dpc", cell=None, atrous_rates=common.DEFAULT_ATROUS_RATES,
               aspp_with_separable_conv=True,
               add_image_level_feature=True, image_pooling_crop_size=None, output_stride=16,
               filters=256, dropout_rate=0.1,
               batch_norm_decay=common.REFERENCE_BATCH_NORM_DECAY,
               weight_decay=common.DEFAULT_WEIGHT_DECAY):
    """The DPC (`head="dpc"`, `cell` a CellSpec or reference JSON list; None = the
    published cell) or the ASPP layer, named as in the reference."""
    shared = dict(batch_norm_decay=batch_norm_decay, weight_decay=weight_decay)
    if head == "dpc":
        return DensePredictionCell(
            cell, filters=filters, output_stride=output_stride,
            image_pooling_crop_size=image_pooling_crop_size, dropout_rate=dropout_rate,
            name=HEAD_NAMES["dpc"], **shared)
    return ASPP(
        filters, atrous_rates, separable=aspp_with_separable_conv,
        image_pooling=add_image_level_feature, image_pooling_crop_size=image_pooling_crop_size,
        output_stride=output_stride, dropout_rate=dropout_rate, name=HEAD_NAMES["aspp"],
        **shared)


def build_logits(num_classes, weight_decay=common.DEFAULT_WEIGHT_DECAY):
    """The reference's 1x1 logits conv (with bias, truncated-normal 0.01 kernel)."""
    return keras.layers.Conv2D(
        num_classes, 1, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
        kernel_regularizer=keras.regularizers.L2(weight_decay / 2) if weight_decay else None,
        name="logits")
