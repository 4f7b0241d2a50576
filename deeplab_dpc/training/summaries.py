"""TensorBoard scalar and image summaries without the `tensorboard` package.

`tf.summary.scalar` and `tf.summary.image` live in TensorBoard, which
TensorFlow no longer installs; training should not need it to write its
events. These write the same records TensorBoard's own summary ops write (the
plugin names and value layouts TensorBoard reads), through `tf.summary.write`.
"""
import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _metadata(plugin, data_class):
    metadata = summary_pb2.SummaryMetadata(data_class=data_class)
    metadata.plugin_data.plugin_name = plugin
    return metadata.SerializeToString()


_SCALAR = _metadata("scalars", summary_pb2.DATA_CLASS_SCALAR)
_IMAGE = _metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE)


def scalar(name, value, step):
    tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=_SCALAR)


def image(name, pixels, step):
    """One uint8 [H, W, 3] image, stored as TensorBoard does: [width, height, png]."""
    pixels = tf.convert_to_tensor(pixels, tf.uint8)
    shape = tf.shape(pixels)
    value = tf.stack([tf.as_string(shape[1]), tf.as_string(shape[0]),
                      tf.io.encode_png(pixels)])
    tf.summary.write(name, value, step=step, metadata=_IMAGE)
