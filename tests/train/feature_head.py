"""A model that is not DeepLab, trained with `train.loop`: a cell head + logits on
fixed feature tensors (what the search's proxy task trains on cached features).

    python -m tests.train.feature_head LOGDIR KILL_AT_STEP

trains in LOGDIR and SIGKILLs itself when step KILL_AT_STEP has run (after the
checkpoint of step SAVE), as a killed job would be.
"""
import os
import signal
import sys

import numpy as np

STEPS, SAVE, CHANNELS, NUM_CLASSES, IGNORE = 6, 3, 12, 3, 255
MODEL_CLASS = "FeatureHead"


def features_and_labels():
    """8 feature maps [9, 13, C]; the label is the argmax of the first 3 channels,
    with a band of ignore pixels."""
    rng = np.random.default_rng(3)
    features = rng.normal(0, 1, (8, 9, 13, CHANNELS)).astype(np.float32)
    labels = np.argmax(features[..., :NUM_CLASSES], -1).astype(np.int32)[..., None]
    labels[:, 0] = IGNORE
    return features, labels


def model_fn():
    import keras

    from deeplab_dpc import spec
    from deeplab_dpc.layers import DensePredictionCell

    cell = spec.CellSpec((spec.Branch(-1, spec.Conv1x1()),
                          spec.Branch(0, spec.PyramidPooling(2, 2))))
    inputs = keras.Input((None, None, CHANNELS), name="image")
    x = DensePredictionCell(cell, filters=8, batch_norm_decay=0.9, name="cell")(inputs)
    logits = keras.layers.Conv2D(NUM_CLASSES, 1, name="logits")(x)
    return keras.Model(inputs, logits, name="feature_head")


def dataset_fn(input_context):
    import tensorflow as tf

    features, labels = features_and_labels()
    batch = input_context.get_per_replica_batch_size(2)
    return tf.data.Dataset.from_tensor_slices({"image": features, "label": labels}) \
        .repeat().batch(batch, drop_remainder=True)


def config(logdir):
    from deeplab_dpc.train.config import TrainConfig

    return TrainConfig(train_logdir=str(logdir), train_batch_size=2, base_learning_rate=0.05,
                       training_number_of_steps=STEPS, save_interval_steps=SAVE, log_steps=1)


def train(logdir, log=lambda line: None):
    from deeplab_dpc import run_dir
    from deeplab_dpc.data import datasets
    from deeplab_dpc.train import loop

    info = datasets.DatasetInfo("features", NUM_CLASSES, ignore_label=IGNORE)
    hooks = loop.TrainHooks(write_run_config=lambda model: run_dir.write_run_config(
        str(logdir), model, info, {}, model_class=MODEL_CLASS))
    return loop.train(config(logdir), model_fn, dataset_fn, IGNORE, hooks=hooks, log=log)


def main(logdir, kill_at):
    def log(line):
        if line.startswith(f"step {kill_at}/"):
            os.kill(os.getpid(), signal.SIGKILL)

    train(logdir, log)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
