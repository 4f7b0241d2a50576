"""Names shared across the package, spelled once.

TFRecord keys are the reference DeepLab's, so records written by either
implementation read in the other.
"""

# A run's checkpoint prefixes are <run dir>/ckpt-<step> (the reference's: model.ckpt-<step>).
CHECKPOINT_NAME = "ckpt"

# TFRecord example keys (reference `build_data.py`).
IMAGE_ENCODED = "image/encoded"
IMAGE_FILENAME = "image/filename"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_CHANNELS = "image/channels"
LABEL_ENCODED = "image/segmentation/class/encoded"
LABEL_FORMAT = "image/segmentation/class/format"

# Keys of a decoded example (input pipeline) and of a training batch (train.loop).
IMAGE = "image"
LABEL = "label"
FILENAME = "filename"
ORIGINAL_SIZE = "original_size"

# Shard file names: `{split}-{i:05d}-of-{n:05d}.tfrecord`.
SHARD_PATTERN = "{split}-{index:05d}-of-{num_shards:05d}.tfrecord"
DATASET_INFO_FILE = "dataset_info.json"

# Package name under which every Keras object is registered for serialization.
KERAS_PACKAGE = "deeplab_dpc"

# Reference defaults that several modules share.
DEFAULT_IGNORE_LABEL = 255
BATCH_NORM_EPSILON = 1e-5  # head and decoder (reference); backbones use their own.
REFERENCE_BATCH_NORM_DECAY = 0.9997
DEFAULT_WEIGHT_DECAY = 4e-5
# The reference's `--atrous_rates` default: unset, i.e. ASPP without atrous branches
# (1x1 + image pooling, as its MobileNet-v2 runs). Table 1's rows pass 6/12/18.
DEFAULT_ATROUS_RATES = ()
