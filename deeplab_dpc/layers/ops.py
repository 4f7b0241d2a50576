"""The ops that the DPC and ASPP share: conv+BN+ReLU, the reference's separable
conv, pooled conv (spatial pyramid pooling) and the align-corners bilinear resize.

Settings follow the reference DeepLab head: no conv bias before BN, BN epsilon
1e-5, L2 regularisation of `weight_decay / 2` (slim's `wd * sum(w^2) / 2`) on
regular and pointwise kernels but not on depthwise ones.
"""
import keras
import tensorflow as tf

from deeplab_dpc import common


def resize_bilinear(images, size):
    """Bilinear resize with `align_corners=True`, as every resize in the reference.

    Corner pixels of input and output coincide, so a 1x1 map tiles exactly and
    a (k*s+1)-sized map upsamples by s without a half-pixel shift.
    """
    # The raw op: tf.compat.v1's wrapper is the same kernel plus a deprecation warning.
    out = tf.raw_ops.ResizeBilinear(images=images, size=size, align_corners=True,
                                    half_pixel_centers=False)
    return tf.cast(out, images.dtype)


def l2(weight_decay):
    return keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None


def _bn(name, batch_norm_decay, batch_norm_epsilon):
    return keras.layers.BatchNormalization(
        momentum=batch_norm_decay, epsilon=batch_norm_epsilon, name=name)


class _HeadLayer(keras.layers.Layer):
    """Base for head layers: the batch-norm and weight-decay settings they share."""

    def __init__(self, batch_norm_decay=common.REFERENCE_BATCH_NORM_DECAY,
                 batch_norm_epsilon=common.BATCH_NORM_EPSILON,
                 weight_decay=common.DEFAULT_WEIGHT_DECAY, **kwargs):
        super().__init__(**kwargs)
        self.batch_norm_decay = batch_norm_decay
        self.batch_norm_epsilon = batch_norm_epsilon
        self.weight_decay = weight_decay

    def _bn(self, name):
        return _bn(name, self.batch_norm_decay, self.batch_norm_epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(batch_norm_decay=self.batch_norm_decay,
                      batch_norm_epsilon=self.batch_norm_epsilon,
                      weight_decay=self.weight_decay)
        return config


@keras.saving.register_keras_serializable(package=common.KERAS_PACKAGE)
class ConvBNReLU(_HeadLayer):
    """Conv (1x1, or kxk atrous) -> BN -> ReLU: the reference's `slim.conv2d`."""

    def __init__(self, filters=256, kernel_size=1, rate=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.rate = tuple(rate) if isinstance(rate, (list, tuple)) else (rate, rate)
        self.conv = keras.layers.Conv2D(
            filters, kernel_size, padding="same", dilation_rate=self.rate,
            use_bias=False, kernel_regularizer=l2(self.weight_decay), name="conv")
        self.bn = self._bn("bn")

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build(tuple(input_shape[:-1]) + (self.filters,))

    def call(self, inputs, training=None):
        return tf.nn.relu(self.bn(self.conv(inputs), training=training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size,
                      rate=list(self.rate))
        return config


@keras.saving.register_keras_serializable(package=common.KERAS_PACKAGE)
class SeparableConvBNReLU(_HeadLayer):
    """Depthwise kxk atrous -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU.

    The reference's `split_separable_conv2d`: unlike Keras `SeparableConv2D` it
    normalises and rectifies between the two convs. `rate` is (r_h, r_w), so
    the receptive field can be tall-and-thin or short-and-wide.
    """

    def __init__(self, filters=256, rate=(1, 1), kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.rate = tuple(rate) if isinstance(rate, (list, tuple)) else (rate, rate)
        self.kernel_size = kernel_size
        self.depthwise = keras.layers.DepthwiseConv2D(
            kernel_size, padding="same", dilation_rate=self.rate, use_bias=False,
            depthwise_initializer=keras.initializers.TruncatedNormal(stddev=0.33),
            name="depthwise")
        self.depthwise_bn = self._bn("depthwise_bn")
        self.pointwise = keras.layers.Conv2D(
            filters, 1, use_bias=False,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.06),
            kernel_regularizer=l2(self.weight_decay), name="pointwise")
        self.pointwise_bn = self._bn("pointwise_bn")

    def build(self, input_shape):
        self.depthwise.build(input_shape)
        self.depthwise_bn.build(input_shape)
        self.pointwise.build(input_shape)
        self.pointwise_bn.build(tuple(input_shape[:-1]) + (self.filters,))

    def call(self, inputs, training=None):
        x = tf.nn.relu(self.depthwise_bn(self.depthwise(inputs), training=training))
        return tf.nn.relu(self.pointwise_bn(self.pointwise(x), training=training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, rate=list(self.rate),
                      kernel_size=self.kernel_size)
        return config


def grid_pooling_matrix(size, cells, dtype=tf.float32):
    """A [cells, size] matrix whose row i averages cell i of `size` positions.

    Cell i covers [floor(i * size / cells), ceil((i + 1) * size / cells)), the
    adaptive-pooling rule: when `size` is not a multiple of `cells` (65 / 8)
    neighbouring cells share their boundary position, every position lies in
    some cell and no cell is empty, even when size < cells.
    """
    i = tf.range(cells)
    start = (i * size) // cells
    end = -((-(i + 1) * size) // cells)  # ceil division
    pos = tf.range(size)[tf.newaxis, :]
    inside = (pos >= start[:, tf.newaxis]) & (pos < end[:, tf.newaxis])
    weights = tf.cast(inside, dtype) / tf.cast(end - start, dtype)[:, tf.newaxis]
    return weights


def reference_pooling_kernel(crop_size, output_stride, grid_size):
    """The reference's sliding-window kernel: int((crop - 1) / (os * grid)) + 1."""
    return tuple(int((c - 1) / (output_stride * g)) + 1
                 for c, g in zip(crop_size, grid_size))


@keras.saving.register_keras_serializable(package=common.KERAS_PACKAGE)
class PooledConvBNReLU(_HeadLayer):
    """Average pooling -> 1x1 conv -> BN -> ReLU -> bilinear resize back: the layer of
    the search space's pyramid-pooling op (`spec.PyramidPooling`) and of ASPP's image
    pooling.

    By default pools into a g_h x g_w grid of cells (the paper's definition; see
    `grid_pooling_matrix` for sizes that do not divide), so the op means the same
    at any input size. With `pool_kernel` it is the reference's stride-1 VALID
    sliding window, whose kernel the reference derives from the training crop.
    Grid 1x1 is image-level pooling.
    """

    def __init__(self, filters=256, grid_size=(1, 1), pool_kernel=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.grid_size = tuple(grid_size)
        self.pool_kernel = tuple(pool_kernel) if pool_kernel else None
        self.conv = ConvBNReLU(
            filters, 1, batch_norm_decay=self.batch_norm_decay,
            batch_norm_epsilon=self.batch_norm_epsilon,
            weight_decay=self.weight_decay, name="conv")

    def build(self, input_shape):
        self.conv.build(input_shape)

    def pool(self, inputs):
        if self.pool_kernel:
            return tf.nn.avg_pool2d(inputs, self.pool_kernel, strides=1, padding="VALID")
        shape = tf.shape(inputs)
        rows = grid_pooling_matrix(shape[1], self.grid_size[0], inputs.dtype)
        cols = grid_pooling_matrix(shape[2], self.grid_size[1], inputs.dtype)
        return tf.einsum("ih,bhwc,jw->bijc", rows, inputs, cols)

    def call(self, inputs, training=None):
        pooled = self.conv(self.pool(inputs), training=training)
        return resize_bilinear(pooled, tf.shape(inputs)[1:3])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, grid_size=list(self.grid_size),
                      pool_kernel=list(self.pool_kernel) if self.pool_kernel else None)
        return config
