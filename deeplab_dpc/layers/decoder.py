"""The DeepLab-v3+ decoder: refine the head's output with stride-4 features."""
import keras
import tensorflow as tf

from deeplab_dpc import common
from deeplab_dpc.layers import ops


@keras.saving.register_keras_serializable(package=common.KERAS_PACKAGE)
class Decoder(ops._HeadLayer):
    """[head features, low-level features] -> refined features at the low-level stride.

    Low-level features are projected to 48 channels (`feature_projection0`) so
    they do not outweigh the 256 head channels, concatenated with the upsampled
    head output, then two 3x3 separable convs (`decoder_conv0/1`).
    """

    def __init__(self, filters=256, low_level_filters=48, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.low_level_filters = low_level_filters
        shared = dict(batch_norm_decay=self.batch_norm_decay,
                      batch_norm_epsilon=self.batch_norm_epsilon,
                      weight_decay=self.weight_decay)
        self.projection = ops.ConvBNReLU(
            low_level_filters, 1, name="feature_projection0", **shared)
        self.conv0 = ops.SeparableConvBNReLU(filters, 1, name="decoder_conv0", **shared)
        self.conv1 = ops.SeparableConvBNReLU(filters, 1, name="decoder_conv1", **shared)

    def build(self, input_shape):
        head_shape, low_shape = input_shape
        self.projection.build(low_shape)
        concat = tuple(low_shape[:-1]) + (head_shape[-1] + self.low_level_filters,)
        self.conv0.build(concat)
        self.conv1.build(tuple(low_shape[:-1]) + (self.filters,))

    def call(self, inputs, training=None):
        head, low_level = inputs
        low_level = self.projection(low_level, training=training)
        head = ops.resize_bilinear(head, tf.shape(low_level)[1:3])
        x = tf.concat([head, low_level], axis=-1)
        return self.conv1(self.conv0(x, training=training), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1][:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, low_level_filters=self.low_level_filters)
        return config
