"""Validating (image, label) pairs and writing them as sharded DeepLab TFRecords.

The reference keeps this beside its reader (`datasets/build_data.py`); here the
converters (`sources`, behind `tfrecords_tools/`) and the synthetic set share it.

Everything is validated before anything is written, so a bad file found at image 2,900
costs no half-written dataset, and the error comes before TensorFlow is even imported:
1. headers of every pair (files exist, image PNG/JPEG, label single-channel, same size):
   seconds for a whole dataset, so a missing label is reported at once;
2. a full decode of every image and label in parallel (truncated files, class ids out of
   range); the writers then decode only the labels again (small), never the images.
Writing stays atomic for what validation cannot foresee (disk full, a file changed under
us): workers write hidden temporaries (`files.temp_path`), and shards get their final
names only after every shard of every split succeeded; any failure stops the workers
and removes the run's temporaries.
"""
import concurrent.futures
import dataclasses
import io
import os
import re
import threading
from typing import Optional

import numpy as np
from PIL import Image

from deeplab_dpc import common, files
from deeplab_dpc.data import datasets, images
from deeplab_dpc.errors import InputError
from deeplab_dpc.tf_import import import_tensorflow
from deeplab_dpc.progress import Progress

# PIL modes holding one value per pixel ("P": palette indices, which ARE the class ids).
_SINGLE_CHANNEL_MODES = ("1", "L", "P", "I", "I;16", "I;16B", "I;16L")
_FORMATS = {"PNG": "png", "JPEG": "jpeg"}


@dataclasses.dataclass(frozen=True, eq=False)
class Pair:
    """One example. `name` becomes `image/filename` (the reference stores the stem)."""

    name: str
    image: str
    label: str
    table: Optional[np.ndarray] = None  # source pixel value -> class id; None: as-is


# ----------------------------------------------------------------------------- reading


def check_pair(pair, rgb_hint=""):
    """The cheap, header-only checks (step 1 of the module docstring)."""
    fmt, size, _, _ = images.open_file(pair.image, "image")
    if fmt not in _FORMATS:
        raise InputError(f"{pair.image}: image is {fmt}, not PNG or JPEG")
    if not os.path.isfile(pair.label):
        raise InputError(f"{pair.label}: missing label for image {pair.image}")
    _, label_size, mode, _ = images.open_file(pair.label, "label")
    if mode not in _SINGLE_CHANNEL_MODES:
        hint = f"; {rgb_hint}" if rgb_hint else ""
        raise InputError(
            f"{pair.label}: label has {Image.getmodebands(mode)} channels (mode "
            f"{mode}), expected single-channel class ids{hint}")
    if label_size != size:
        raise InputError(
            f"{pair.label}: label size {label_size[0]}x{label_size[1]} differs from "
            f"image {pair.image} size {size[0]}x{size[1]}")


def _class_ids(pair, info):
    """The label as a uint8 array of class ids, decoded fully and range-checked."""
    ids = images.read_label(pair.label).astype(np.int64)
    if pair.table is not None:
        inside = (ids >= 0) & (ids < len(pair.table))
        ids = np.where(inside, pair.table[np.clip(ids, 0, len(pair.table) - 1)],
                       info.ignore_label)
    bad = np.unique(ids[(ids < 0) | (ids >= info.num_classes)])
    bad = bad[bad != info.ignore_label]
    if bad.size:
        raise InputError(
            f"{pair.label}: class ids {bad[:8].tolist()} outside [0, {info.num_classes}) "
            f"and not the ignore label {info.ignore_label}")
    return ids.astype(np.uint8)


def _png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def encode_example(tf, name, image_bytes, image_format, height, width, label_png):
    """A tf.train.Example with the reference keys, from encoded image and label bytes."""
    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))

    return tf.train.Example(features=tf.train.Features(feature={
        common.IMAGE_ENCODED: b(image_bytes),
        common.IMAGE_FILENAME: b(name.encode()),
        common.IMAGE_FORMAT: b(image_format.encode()),
        common.IMAGE_HEIGHT: i(height),
        common.IMAGE_WIDTH: i(width),
        common.IMAGE_CHANNELS: i(3),
        common.LABEL_ENCODED: b(label_png),
        common.LABEL_FORMAT: b(b"png"),
    }))


def make_example(tf, pair, info):
    """The Example of a pair; the image bytes are the source file's."""
    with open(pair.image, "rb") as f:
        data = f.read()
    fmt, (width, height), _, _ = images.open_file(pair.image, "image", data=data)  # decoded in validate
    return encode_example(tf, pair.name, data, _FORMATS[fmt], height, width,
                          _png(_class_ids(pair, info)))


# ----------------------------------------------------------------------------- writing


def _run(fn, items, num_workers, stop):
    """`fn(item)` on threads; raises the failure of the EARLIEST failing item (so the
    error names the same file on every run), after setting `stop` and joining all."""
    def call(item):
        if not stop.is_set():
            fn(item)

    pool = concurrent.futures.ThreadPoolExecutor(num_workers or os.cpu_count() or 1)
    try:
        for _ in pool.map(call, items):
            pass
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def validate(pair, info, progress):
    """Step 2 of the module docstring: full decode of image and label, class id range."""
    images.open_file(pair.image, "image", full=True)
    _class_ids(pair, info)
    progress.update()


def _write_shard(tf, path, temp, pairs, info, stop, progress):
    with tf.io.TFRecordWriter(temp) as writer:
        for pair in pairs:
            if stop.is_set():
                return
            writer.write(make_example(tf, pair, info).SerializeToString())
            progress.update()
    progress.note(f"wrote {os.path.basename(path)}: {len(pairs)} examples")


def _shards(output_dir, split, pairs, num_shards):
    """Contiguous slices, ceil(n / num_shards) per shard, as the reference (empty ones too)."""
    per_shard = -(-len(pairs) // num_shards)
    for index in range(num_shards):
        name = common.SHARD_PATTERN.format(split=split, index=index, num_shards=num_shards)
        yield os.path.join(output_dir, name), pairs[index * per_shard:(index + 1) * per_shard]


def write_dataset(info, splits, output_dir, num_shards, num_workers=0, rgb_hint="",
                  progress=True):
    """Validates `{split: [Pair]}`, then writes it as TFRecord shards plus `dataset_info.json`.

    Returns `{split: examples written}`. `num_workers=0`: one thread per CPU core
    (threads suffice: PIL decoding, zlib and the record writer release the GIL).
    """
    files.check_output_dir(output_dir, "output_dir")
    if num_shards < 1:
        raise InputError(f"num_shards must be >= 1, got {num_shards}", param="num_shards")
    for split, pairs in splits.items():
        if not pairs:
            raise InputError(f"split {split!r}: no images found")
        for pair in pairs:
            check_pair(pair, rgb_hint)
    everything = [pair for pairs in splits.values() for pair in pairs]
    with Progress(len(everything), "checking", enabled=progress) as bar:
        _run(lambda pair: validate(pair, info, bar), everything, num_workers,
             threading.Event())

    tf = import_tensorflow()  # late: every check above answers without it

    files.makedirs(output_dir)
    files.remove_stale_temporaries(output_dir, _is_ours)
    jobs = [job for split, pairs in splits.items()
            for job in _shards(output_dir, split, pairs, num_shards)]
    stop = threading.Event()
    with Progress(len(everything), "writing", enabled=progress) as bar, \
            files.atomic_paths([path for path, _ in jobs]) as temps:
        _run(lambda job: _write_shard(tf, *job, info, stop, bar),
             [(path, temp, pairs) for (path, pairs), temp in zip(jobs, temps)],
             num_workers, stop)
    counts = {split: len(pairs) for split, pairs in splits.items()}
    shards = {split: sorted(os.path.basename(path) for path, _ in jobs
                            if os.path.basename(path).startswith(f"{split}-"))
              for split in splits}
    # The new manifest first: a reader that trusts it never looks for a removed shard.
    _write_info(output_dir, info, counts, shards)
    _remove_stale_shards(tf, output_dir, counts, {path for path, _ in jobs})
    print(f"wrote {', '.join(f'{s}: {n}' for s, n in counts.items())} examples "
          f"to {output_dir}", flush=True)
    return counts


_SHARD_NAME = re.compile(r".+-\d{5}-of-\d{5}\.tfrecord")


def _is_ours(name):
    """Names this writer writes: shards and dataset_info.json."""
    return name == common.DATASET_INFO_FILE or bool(_SHARD_NAME.fullmatch(name))


def _remove_stale_shards(tf, output_dir, splits, written):
    """A rerun with another --num_shards must not leave the old shards for a glob to find."""
    for split in splits:
        pattern = re.compile(re.escape(split) + r"-\d{5}-of-\d{5}\.tfrecord")
        for path in tf.io.gfile.glob(os.path.join(output_dir, f"{split}-*.tfrecord")):
            if pattern.fullmatch(os.path.basename(path)) and path not in written:
                tf.io.gfile.remove(path)


def _write_info(output_dir, info, counts, shards):
    """Writes dataset_info.json last: it is the manifest (the shards of every split),
    and keeps the splits converted earlier into the same folder (same dataset)."""
    try:
        old = datasets.read_dataset_info(output_dir)
    except InputError:  # our own file, corrupt: rewrite it
        old = None
    same = old is not None and old.name == info.name
    sizes, listed = (dict(old.splits), dict(old.shards)) if same else ({}, {})
    sizes.update(counts)
    listed.update(shards)
    datasets.write_dataset_info(output_dir, dataclasses.replace(info, splits=sizes,
                                                                shards=listed))
