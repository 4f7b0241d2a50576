"""Atrous Spatial Pyramid Pooling, the hand-designed baseline beside the DPC."""
import keras
import tensorflow as tf

from deeplab_dpc import common
from deeplab_dpc.layers import ops


@keras.saving.register_keras_serializable(package=common.KERAS_PACKAGE)
class ASPP(ops._HeadLayer):
    """Image pooling, a 1x1 branch and 3x3 atrous branches -> concat -> 1x1 -> dropout.

    `atrous_rates` are used literally (pass 12/24/36 at output stride 8, as with
    the reference's `--atrous_rates`); an empty tuple gives the 1x1 + image
    pooling head DeepLab often uses with MobileNet-v2. Branch order and names
    follow the reference: `image_pooling`, `aspp0`, `aspp1..n`,
    `concat_projection`, with dropout after the projection.
    """

    def __init__(self, filters=256, atrous_rates=common.DEFAULT_ATROUS_RATES, separable=True,
                 image_pooling=True, image_pooling_crop_size=None, output_stride=16,
                 dropout_rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.atrous_rates = tuple(int(r) for r in atrous_rates)
        self.separable = separable
        self.image_pooling = image_pooling
        self.image_pooling_crop_size = (
            tuple(image_pooling_crop_size) if image_pooling_crop_size else None)
        self.output_stride = output_stride
        self.dropout_rate = dropout_rate
        shared = dict(batch_norm_decay=self.batch_norm_decay,
                      batch_norm_epsilon=self.batch_norm_epsilon,
                      weight_decay=self.weight_decay)
        self.branches = []
        if image_pooling:
            kernel = (ops.reference_pooling_kernel(
                self.image_pooling_crop_size, output_stride, (1, 1))
                if self.image_pooling_crop_size else None)
            self.branches.append(
                ops.PooledConvBNReLU(filters, (1, 1), kernel, name="image_pooling", **shared))
        self.branches.append(ops.ConvBNReLU(filters, 1, name="aspp0", **shared))
        for i, rate in enumerate(self.atrous_rates, start=1):
            if separable:
                layer = ops.SeparableConvBNReLU(filters, rate, name=f"aspp{i}", **shared)
            else:
                layer = ops.ConvBNReLU(filters, 3, rate, name=f"aspp{i}", **shared)
            self.branches.append(layer)
        self.projection = ops.ConvBNReLU(filters, 1, name="concat_projection", **shared)
        self.dropout = keras.layers.Dropout(dropout_rate, name="concat_projection_dropout")

    def build(self, input_shape):
        for layer in self.branches:
            layer.build(input_shape)
        self.projection.build(tuple(input_shape[:-1]) + (self.filters * len(self.branches),))

    def call(self, inputs, training=None):
        x = tf.concat([layer(inputs, training=training) for layer in self.branches], -1)
        return self.dropout(self.projection(x, training=training), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, atrous_rates=list(self.atrous_rates),
            separable=self.separable, image_pooling=self.image_pooling,
            image_pooling_crop_size=(list(self.image_pooling_crop_size)
                                     if self.image_pooling_crop_size else None),
            output_stride=self.output_stride, dropout_rate=self.dropout_rate)
        return config
