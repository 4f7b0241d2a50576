"""A tiny, trivially learnable dataset and tiny training settings for the tests.

Scenes are random rectangles whose colour names their class (plus noise), with
a few pixels labelled ignore, written as reference-keyed TFRecords beside a
dataset_info.json, as a converter would.
"""
import numpy as np

from deeplab_dpc.data import datasets
from tests import records
from tests.records import TINY_MODEL

NUM_CLASSES = 3
IGNORE = 255
COLOURS = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200)], np.float32)


def toy_scene(rng, height=48, width=48):
    """(uint8 image [h, w, 3], uint8 label [h, w])."""
    label = np.zeros((height, width), np.uint8)
    for _ in range(4):
        top, left = rng.integers(0, height - 8), rng.integers(0, width - 8)
        h, w = rng.integers(8, height - top + 1), rng.integers(8, width - left + 1)
        label[top:top + h, left:left + w] = rng.integers(NUM_CLASSES)
    image = COLOURS[label] + rng.normal(0, 20, (height, width, 3))
    label[rng.random((height, width)) < 0.05] = IGNORE
    return np.clip(image, 0, 255).astype(np.uint8), label


def write_toy_dataset(dataset_dir, num_images=8, num_shards=2, split="train", seed=0,
                      size=(48, 48)):
    rng = np.random.default_rng(seed)
    shards = [[(*toy_scene(rng, *size), f"toy_{i}") for i in range(shard, num_images, num_shards)]
              for shard in range(num_shards)]
    return records.write_records(dataset_dir, split, shards, datasets.DatasetInfo(
        name="toy", num_classes=NUM_CLASSES, ignore_label=IGNORE,
        class_names=("red", "green", "blue"), splits={split: num_images}))


def tiny_config(logdir, dataset_dir, model=None, **overrides):
    """A TrainConfig for a model that builds and steps in seconds on a CPU."""
    from deeplab_dpc.train.config import TrainConfig

    settings = dict(train_logdir=str(logdir), dataset_dir=str(dataset_dir), dataset="toy",
                    model=dict(TINY_MODEL, **(model or {})), train_crop_size=(33, 33),
                    train_batch_size=2, base_learning_rate=0.01,
                    training_number_of_steps=6, save_interval_steps=3, log_steps=1)
    settings.update(overrides)
    return TrainConfig(**settings)


def tiny_flags(logdir, dataset_dir, **overrides):
    """The binary's flags for the same tiny run, as `--name=value` strings."""
    model = dict(TINY_MODEL)
    flags = dict(train_logdir=logdir, dataset_dir=dataset_dir, dataset="toy",
                 model_variant=model.pop("backbone"), **model, train_crop_size="33,33",
                 train_batch_size=2,
                 base_learning_rate=0.01, training_number_of_steps=6, save_interval_steps=3,
                 log_steps=1)
    flags.update(overrides)
    return [f"--{k}={v}" for k, v in flags.items()]
