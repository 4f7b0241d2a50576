"""Tiny training runs and splits for the eval, vis, predict and export tests.

Run directories are made with the trainer's own code (`write_run_config`,
`make_checkpoint` and a CheckpointManager), so the tests read what a user's
training run leaves behind.
"""
import numpy as np

from deeplab_dpc import common

TINY_MODEL = dict(backbone="mobilenet_v2", depth_multiplier=0.25, head_filters=16,
                  batch_norm_decay=0.9)
SYNTHETIC_SIZE = (97, 193)


def write_synthetic_split(dataset_dir, split="val", num_images=4):
    """A few small synthetic scenes as one TFRecord shard plus dataset_info.json
    (drawn in this process: the dataset writer's worker pool costs more here)."""
    import dataclasses

    from deeplab_dpc.data import synthetic

    scenes = [synthetic.generate_scene(synthetic.scene_rng(0, split, i), *SYNTHETIC_SIZE)
              + (synthetic.scene_name(split, i),) for i in range(num_images)]
    info = dataclasses.replace(synthetic.INFO, splits={split: num_images})
    return write_records(dataset_dir, split, scenes, info)


def calibrated_tiny_model(num_classes, image_size=(33, 49)):
    """A tiny DeepLab whose predictions vary from pixel to pixel, without training.

    Freshly initialised, MobileNet-v2's activations vanish (~1e-14 at its output:
    BN statistics are still 0 and 1) and every pixel gets the same prediction.
    One training-mode call with BN decay 0 sets the statistics, as training
    would, and larger logits weights (they start at ~0.01) make classes differ.
    """
    from deeplab_dpc.model import DeepLab

    model = DeepLab(num_classes, **dict(TINY_MODEL, batch_norm_decay=0.0))
    images = np.random.default_rng(0).uniform(0, 255, (2, *image_size, 3)).astype(np.float32)
    model(images, training=True)
    logits = model.get_layer("logits")
    logits.kernel.assign(logits.kernel * 100)
    return model


def save_run(logdir, model, dataset_info, step=0, train_settings=None):
    """A run directory holding `model` untrained, saved as the trainer saves."""
    import keras
    import tensorflow as tf

    from deeplab_dpc.training import checkpoints

    checkpoints.write_run_config(str(logdir), model, dataset_info, train_settings or {})
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)
    step_variable = tf.Variable(step, dtype=tf.int64, trainable=False)
    manager = tf.train.CheckpointManager(
        checkpoints.make_checkpoint(model, optimizer, step_variable), str(logdir), 3,
        checkpoint_name=checkpoints.CHECKPOINT_NAME)
    return manager.save(checkpoint_number=step)


def write_records(dataset_dir, split, examples, dataset_info):
    """Writes (uint8 image [h, w, 3], uint8 label [h, w], filename) examples as one
    reference-keyed shard, beside `dataset_info` as dataset_info.json."""
    import tensorflow as tf

    from deeplab_dpc.data import datasets

    def feature(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    dataset_dir.mkdir(parents=True, exist_ok=True)
    name = common.SHARD_PATTERN.format(split=split, index=0, num_shards=1)
    with tf.io.TFRecordWriter(str(dataset_dir / name)) as writer:
        for image, label, filename in examples:
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                common.IMAGE_ENCODED: feature(tf.io.encode_png(image).numpy()),
                common.IMAGE_FILENAME: feature(filename.encode()),
                common.IMAGE_FORMAT: feature(b"png"),
                common.LABEL_ENCODED: feature(
                    tf.io.encode_png(np.asarray(label, np.uint8)[..., None]).numpy()),
                common.LABEL_FORMAT: feature(b"png"),
            })).SerializeToString())
    datasets.write_dataset_info(str(dataset_dir), dataset_info)
    return str(dataset_dir)
