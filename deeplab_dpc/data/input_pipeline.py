"""The tf.data input pipeline: TFRecords (or a tfds builder) -> DeepLab's batches.

Training applies the reference DeepLab augmentation
(`input_preprocess.preprocess_image_and_label`): random scale from a fixed set,
pad with the mean pixel / ignore label at the bottom and right, random crop,
random left-right flip. Evaluation applies no random op; it only pads to a fixed
size when one is given. With `min_resize_value` both first resize the image to
the reference's range (`resize_to_range`; the ADE20K recipe).

Every element of `build_dataset`'s output is a dict (B = per-replica batch):
  "image":         float32 [B, H, W, 3], RGB in [0, 255]; padding is 127.5.
  "label":         int32   [B, H, W, 1], class (train) ids; `ignore_label` where
                   the dataset says void and where padded.
  "filename":      string  [B], `image/filename` of the record (tfds: image_id).
  "original_size": int32   [B, 2], (height, width) of the decoded image, before
                   any resize.
H, W = crop_size when given; without it each image keeps its (resized, scaled)
size, so batch_size > 1 then needs images of one size.

Random ops are stateless, seeded per element from `tf.data.Dataset.random`, so a
seeded pipeline is reproducible however many threads decode in parallel.
"""
import os

import tensorflow as tf

from deeplab_dpc import common, files
from deeplab_dpc.common import FILENAME, IMAGE, LABEL, ORIGINAL_SIZE  # noqa: F401 (output keys)
from deeplab_dpc.data import datasets
from deeplab_dpc.data import tfds_source
from deeplab_dpc.data.input_config import InputConfig  # noqa: F401 (part of this API)
from deeplab_dpc.errors import InputError

MEAN_PIXEL = 127.5  # what the reference pads images with (its models' mean pixel)
_FLIP_PROBABILITY = 0.5


def random_scale(seed, config):
    """A scalar float32 scale drawn with the stateless `seed` ([2] ints)."""
    factors = config.scale_factors()
    if factors is None:
        return tf.random.stateless_uniform(
            [], seed, config.min_scale_factor, config.max_scale_factor)
    if len(factors) == 1:
        return tf.constant(factors[0], tf.float32)
    index = tf.random.stateless_uniform([], seed, 0, len(factors), dtype=tf.int32)
    return tf.gather(tf.constant(factors, tf.float32), index)


def _pad_to(image, label, height, width, ignore_label):
    """Pads at the bottom and right (as the reference) to at least height x width."""
    shape = tf.shape(image)
    pads = [[0, tf.maximum(height - shape[0], 0)], [0, tf.maximum(width - shape[1], 0)], [0, 0]]
    return (tf.pad(image, pads, constant_values=MEAN_PIXEL),
            tf.pad(label, pads, constant_values=ignore_label))


def scaled_size(size, scale):
    """The reference's scaled size: truncation of size * scale."""
    return tf.cast(tf.cast(size, tf.float32) * scale, tf.int32)


def scale_pad_crop(image, label, scale, offset, crop, ignore_label):
    """resize(scale) -> pad to >= crop (bottom/right) -> crop at `offset`, in one step.

    Equal to doing the three steps in turn (bilinear image, nearest label, both
    with half-pixel centres), but resamples only the crop window: at scale 2 a
    1024x2048 image would otherwise become 2048x4096 to keep 769x769 of it, and
    that made the pipeline ~4x slower.

    Args:
      image: [h, w, 3]; label: [h, w, 1]; scale: float32 scalar;
      offset: int32 [2], top-left of the window in the scaled and padded image.
      crop: int32 [2] (height, width) of the window.
    Returns:
      float32 image and label of the label's dtype, both of size `crop`.
    """
    in_size = tf.shape(image)[:2]
    size = scaled_size(in_size, scale)
    valid = tf.minimum(size - offset, crop)  # the window's part inside the scaled image
    ratio = tf.cast(size, tf.float32) / tf.cast(in_size, tf.float32)
    image = tf.raw_ops.ScaleAndTranslate(
        images=image[None], size=valid, scale=ratio, translation=-tf.cast(offset, tf.float32),
        kernel_type="triangle", antialias=False)[0]  # bilinear, as tf.image.resize

    def nearest(axis):  # tf.image.resize's nearest source index: floor((i + 0.5) * in / out)
        out = tf.cast(tf.range(offset[axis], offset[axis] + valid[axis]), tf.float32)
        step = tf.cast(in_size[axis], tf.float32) / tf.cast(size[axis], tf.float32)
        return tf.minimum(tf.cast(tf.floor((out + 0.5) * step), tf.int32), in_size[axis] - 1)

    label = tf.gather(tf.gather(label, nearest(0)), nearest(1), axis=1)
    pads = tf.stack([[0, crop[0] - valid[0]], [0, crop[1] - valid[1]], [0, 0]])
    return (tf.pad(image, pads, constant_values=MEAN_PIXEL),
            tf.pad(label, pads, constant_values=ignore_label))


def _range_size(in_size, min_size, max_size, factor):
    """`InputConfig.resized_size` in TensorFlow: int32 [2] from int32 [2] (h, w).

    The same float32 operations in the same order, so both give the same sizes.
    """
    sides = tf.cast(in_size, tf.float32)

    def fit(target, side):  # each side floor(side * target / that side), in float32
        return tf.cast(tf.floor(sides * (float(target) / side)), tf.int32)

    size = fit(min_size, tf.reduce_min(sides))
    if max_size is not None:
        if factor is not None:
            max_size -= (max_size - 1) % factor
        size = tf.cond(tf.reduce_max(size) > max_size,
                       lambda: fit(max_size, tf.reduce_max(sides)), lambda: size)
    size = tf.maximum(size, 1)
    if factor is not None:
        size += (factor - (size - 1) % factor) % factor
    return size


def resize_to_range(image, label, min_size, max_size=None, factor=None):
    """The reference's `resize_to_range`: short side to `min_size`, long side capped
    at `max_size`, sides rounded up to a multiple of `factor` plus one (the size
    rule is `InputConfig.resized_size`).

    Image bilinear and label nearest-neighbour, both with `align_corners=True` as
    the reference (the same op as `layers.ops.resize_bilinear`, called raw here so
    the input pipeline does not import Keras).

    Args:
      image: [h, w, C] any numeric dtype; label: [h, w, 1] integer ids, or None.
      min_size: int; max_size, factor: int or None.
    Returns:
      (float32 image, label of its dtype or None), of the resized size.
    """
    size = _range_size(tf.shape(image)[:2], min_size, max_size, factor)
    image = tf.raw_ops.ResizeBilinear(images=tf.cast(image, tf.float32)[None], size=size,
                                      align_corners=True, half_pixel_centers=False)[0]
    if label is not None:
        label = tf.raw_ops.ResizeNearestNeighbor(images=label[None], size=size,
                                                 align_corners=True,
                                                 half_pixel_centers=False)[0]
    return image, label


def preprocess(image, label, config, is_training, seed=None):
    """DeepLab's augmentation of one example; image and label move together.

    Args:
      image: [h, w, 3] any numeric dtype; label: [h, w, 1] integer class ids.
      seed: [2] ints for the stateless random ops (training only).
    Returns:
      (float32 image, int32 label) of crop_size when given.
    """
    crop = config.crop_size
    if config.min_resize_value is not None:
        image, label = resize_to_range(image, label, config.min_resize_value,
                                       config.max_resize_value, config.resize_factor)
    if not is_training:
        image, label = tf.cast(image, tf.float32), tf.cast(label, tf.int32)
        if crop is None:
            return image, label
        fits = tf.debugging.assert_less_equal(
            tf.shape(image)[:2], tf.constant(crop),
            message="image larger than the eval crop_size; use a crop_size >= every image")
        with tf.control_dependencies([fits]):
            image, label = _pad_to(image, label, crop[0], crop[1], config.ignore_label)
        return tf.ensure_shape(image, crop + (3,)), tf.ensure_shape(label, crop + (1,))

    scale_seed, crop_seed_h, crop_seed_w, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 4))
    scale = random_scale(scale_seed, config)
    size = scaled_size(tf.shape(image)[:2], scale)
    if crop is None:
        window, offset = size, tf.zeros([2], tf.int32)
    else:
        window = tf.constant(crop)
        room = tf.maximum(size, window) - window + 1  # offsets the padded image allows
        offset = tf.stack([
            tf.random.stateless_uniform([], crop_seed_h, 0, room[0], tf.int32),
            tf.random.stateless_uniform([], crop_seed_w, 0, room[1], tf.int32)])
    image, label = scale_pad_crop(image, label, scale, offset, window, config.ignore_label)
    if crop is not None:
        image, label = tf.ensure_shape(image, crop + (3,)), tf.ensure_shape(label, crop + (1,))

    label = tf.cast(label, tf.int32)
    flip = tf.random.stateless_uniform([], flip_seed) < _FLIP_PROBABILITY
    return tf.cond(flip,
                   lambda: (tf.reverse(image, [1]), tf.reverse(label, [1])),
                   lambda: (image, label))


def decode(image_bytes, label_bytes, filename, label_table=None):
    """Decodes PNG/JPEG image and single-channel PNG label into an example dict.

    `label_table`, when given, maps decoded values to class ids (e.g. Cityscapes
    label ids to train ids).
    """
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    label = tf.io.decode_png(label_bytes, channels=0)
    size = tf.shape(image)[:2]
    label_shape = tf.concat([size, [1]], 0)
    matches = tf.debugging.assert_equal(
        tf.shape(label), label_shape,
        message="label must be a single-channel PNG of the image's size")
    with tf.control_dependencies([matches]):
        label = tf.reshape(label, label_shape)
    if label_table is not None:
        label = tf.gather(tf.constant(label_table), tf.cast(label, tf.int32))
    return {IMAGE: image, LABEL: label, FILENAME: filename, ORIGINAL_SIZE: size}


def _parse_record(serialized):
    """A serialized tf.Example -> (image bytes, label bytes, filename)."""
    f = tf.io.parse_single_example(serialized, {
        common.IMAGE_ENCODED: tf.io.FixedLenFeature((), tf.string),
        common.LABEL_ENCODED: tf.io.FixedLenFeature((), tf.string),
        common.IMAGE_FILENAME: tf.io.FixedLenFeature((), tf.string, default_value=""),
    })
    return f[common.IMAGE_ENCODED], f[common.LABEL_ENCODED], f[common.IMAGE_FILENAME]


def locate_bad_record(file_pattern):
    """(path, record index, reason) of the first record of `file_pattern` that cannot be
    read, parsed or decoded, or None. For naming the shard after training failed on
    its data: it reads file by file, so call it only after an error."""
    for path in list_files(file_pattern):
        good = 0
        try:
            for record in tf.data.TFRecordDataset(path):
                decode(*_parse_record(record))
                good += 1
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            return path, good, " ".join(e.message.split())[:200]
    return None


def _manifest(folder, cache):
    """The shard names dataset_info.json lists in `folder` (None if it lists none)."""
    if folder not in cache:
        try:
            info = datasets.read_dataset_info(folder)
        except InputError:
            info = None
        cache[folder] = ({n for names in info.shards.values() for n in names}
                         if info is not None and info.shards else None)
    return cache[folder]


def list_files(file_pattern):
    """Sorted files matching a pattern (or a list of files/patterns).

    Writers' temporaries never count. On an object store (a path with a scheme),
    where a half-written shard can carry its final name, only the shards that the
    folder's dataset_info.json lists count: the writers write it last.
    """
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    found = {f for p in patterns for f in tf.io.gfile.glob(p) if not files.is_temporary(f)}
    manifests = {}
    for path in sorted(found):
        if "://" in path:
            listed = _manifest(os.path.dirname(path), manifests)
            if listed is not None and os.path.basename(path) not in listed:
                found.discard(path)
    if not found:
        raise InputError(f"no files match {file_pattern}")
    return sorted(found)


def check_shardable(num_files, input_context, what):
    """Sharding is by file, so every input pipeline needs at least one file."""
    if input_context and num_files < input_context.num_input_pipelines:
        raise InputError(
            f"{what}: {num_files} file(s) cannot be sharded over "
            f"{input_context.num_input_pipelines} input pipelines; write more shards")


def _tfrecord_source(file_pattern, is_training, seed, input_context, num_parallel_calls):
    paths = list_files(file_pattern)
    check_shardable(len(paths), input_context, file_pattern)
    ds = tf.data.Dataset.from_tensor_slices(paths)
    if input_context:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if is_training:
        ds = ds.shuffle(len(paths), seed=seed)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(paths), 8),
                       num_parallel_calls=num_parallel_calls)
    return ds.map(_parse_record, num_parallel_calls=num_parallel_calls)


def build_dataset(source, *, is_training, batch_size, crop_size=None,
                  ignore_label=common.DEFAULT_IGNORE_LABEL, min_scale_factor=0.5,
                  max_scale_factor=2.0, scale_factor_step_size=0.25, min_resize_value=None,
                  max_resize_value=None, resize_factor=None, seed=None,
                  input_context=None, num_parallel_calls=tf.data.AUTOTUNE, repeat=None,
                  shuffle_buffer_size=100, split=None, data_dir=None, manual_dir=None):
    """The batched, augmented dataset (see the module docstring for the elements).

    Args:
      source: a TFRecord file pattern or list of files/patterns, or
        "tfds:<name>[/<config>]" for a tensorflow-datasets builder (Cityscapes;
        see `tfds_source`), read from `split` in `data_dir` and prepared from
        the zips in `manual_dir` when not yet prepared.
      is_training: augment, shuffle and drop the last partial batch.
      batch_size: the global batch; with `input_context` each pipeline batches
        `input_context.get_per_replica_batch_size(batch_size)`.
      crop_size: (height, width). Training crops to it; evaluation pads to it.
      min_resize_value, max_resize_value, resize_factor: resize every image to
        this range first, training and evaluation alike (`resize_to_range`);
        None: no resize.
      seed: makes the whole pipeline (order and augmentation) reproducible.
      input_context: a `tf.distribute.InputContext`; each input pipeline reads
        its own files (or tfds shards).
      repeat: True (forever), False, or a count; default: forever when training.
      split: tfds only; default "train" when training, else "validation".
    """
    config = InputConfig(crop_size, ignore_label, min_scale_factor, max_scale_factor,
                         scale_factor_step_size, min_resize_value, max_resize_value,
                         resize_factor)
    if input_context:
        batch_size = input_context.get_per_replica_batch_size(batch_size)

    label_table = None
    if tfds_source.is_tfds(source):
        prepared = tfds_source.prepare(
            source, split=split or ("train" if is_training else "validation"),
            data_dir=data_dir, manual_dir=manual_dir)
        check_shardable(prepared.num_shards, input_context, f"{source} split {prepared.split}")
        ds = tfds_source.read(prepared, shuffle_files=is_training, seed=seed,
                              input_context=input_context)
        label_table = prepared.label_table
    else:
        ds = _tfrecord_source(source, is_training, seed, input_context, num_parallel_calls)

    if is_training:
        # Shuffling encoded bytes keeps the buffer several times smaller than decoded images.
        ds = ds.shuffle(shuffle_buffer_size, seed=seed)
    if repeat is None:
        repeat = is_training
    if repeat is True:
        ds = ds.repeat()
    elif repeat:
        ds = ds.repeat(repeat)

    def example(image_bytes, label_bytes, filename, element_seed=None):
        ex = decode(image_bytes, label_bytes, filename, label_table)
        ex[IMAGE], ex[LABEL] = preprocess(ex[IMAGE], ex[LABEL], config, is_training,
                                          element_seed)
        return ex

    if is_training:
        # One [2] seed per element, drawn in order, so parallel maps stay deterministic;
        # each input pipeline folds in its id to draw its own stream.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        if input_context:
            seeds = seeds.map(lambda s: tf.random.experimental.stateless_fold_in(
                s, input_context.input_pipeline_id))
        ds = tf.data.Dataset.zip(ds, seeds).map(lambda e, s: example(*e, s),
                                                num_parallel_calls=num_parallel_calls)
    else:
        ds = ds.map(example, num_parallel_calls=num_parallel_calls)
    ds = ds.batch(batch_size, drop_remainder=is_training).prefetch(tf.data.AUTOTUNE)

    options = tf.data.Options()
    # Unseeded training may reorder elements for speed; evaluation keeps file order.
    options.deterministic = seed is not None or not is_training
    return ds.with_options(options)
