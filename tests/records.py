"""The tests' one TFRecord writer and one tiny model, shared by every test module.

Records go through the converters' own `encode_example`, so tests read exactly
what `tfrecords_tools` writes.
"""
import os

import numpy as np

from deeplab_dpc import common

# A DeepLab that builds and steps in seconds on a CPU (BN decay for short runs), with
# the published cell unless a test names another head.
TINY_MODEL = dict(backbone="mobilenet_v2", head="dpc", depth_multiplier=0.25, head_filters=16,
                  batch_norm_decay=0.9)


def encode(image, label, name):
    """A reference-keyed tf.train.Example of uint8 image [h, w, 3] and label [h, w]
    (or any [h, w, c] array: tests of bad labels pass an RGB one)."""
    import tensorflow as tf

    from deeplab_dpc.data.convert.writer import encode_example

    label = np.asarray(label, np.uint8)
    label = label[..., None] if label.ndim == 2 else label
    return encode_example(tf, name, tf.io.encode_png(image).numpy(), "png", image.shape[0],
                          image.shape[1], tf.io.encode_png(label).numpy())


def write_shard(path, examples):
    """Writes (image, label, filename) examples as one TFRecord file; returns its path."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for image, label, name in examples:
            writer.write(encode(image, label, name).SerializeToString())
    return str(path)


def write_records(dataset_dir, split, shards, dataset_info=None):
    """`shards`: a list of example lists, one per `{split}-i-of-n.tfrecord` shard (or one
    list of examples for a single shard), beside `dataset_info` as dataset_info.json."""
    from deeplab_dpc.data import datasets

    if shards and not isinstance(shards[0], list):
        shards = [shards]
    os.makedirs(dataset_dir, exist_ok=True)
    for index, examples in enumerate(shards):
        name = common.SHARD_PATTERN.format(split=split, index=index, num_shards=len(shards))
        write_shard(os.path.join(dataset_dir, name), examples)
    if dataset_info is not None:
        datasets.write_dataset_info(str(dataset_dir), dataset_info)
    return str(dataset_dir)
