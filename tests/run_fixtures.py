"""Tiny training runs and splits for the eval, vis, predict and export tests.

Run directories are made with the trainer's own code (`write_run_config`,
`make_checkpoint` and a CheckpointManager), so the tests read what a user's
training run leaves behind.
"""
import numpy as np

from tests.records import TINY_MODEL, write_records

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

    from deeplab_dpc import run_dir

    run_dir.write_run_config(str(logdir), model, dataset_info, train_settings or {})
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)
    step_variable = tf.Variable(step, dtype=tf.int64, trainable=False)
    manager = tf.train.CheckpointManager(
        run_dir.make_checkpoint(model, optimizer, step_variable), str(logdir), 3,
        checkpoint_name=run_dir.CHECKPOINT_NAME)
    return manager.save(checkpoint_number=step)
