"""The converters' library: find (image, label) pairs, validate, write sharded TFRecords.

Named after the reference's `build_data.py`. Every `build_*_data` binary only parses
flags and calls one `convert_*` function here, so tests call the same code.

Everything is validated before anything is written, so a bad file found at image 2,900
costs no half-written dataset, and the error comes before TensorFlow is even imported:
1. headers of every pair (files exist, image PNG/JPEG, label single-channel, same size):
   seconds for a whole dataset, so a missing label is reported at once;
2. a full decode of every image and label in parallel (truncated files, class ids out of
   range); the writers then decode only the labels again (small), never the images.
Writing stays atomic for what validation cannot foresee (disk full, a file changed under
us): workers write `<shard>.tmp`, and shards get their final names only after every
shard of every split succeeded; any failure stops the workers and removes the run's
`.tmp` files.
"""
import concurrent.futures
import dataclasses
import glob
import io
import json
import os
import re
import sys
import threading
from typing import Optional

import numpy as np
from PIL import Image

from deeplab_dpc import common
from deeplab_dpc.data import datasets
from deeplab_dpc.errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
LABEL_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")
# PIL modes holding one value per pixel ("P": palette indices, which ARE the class ids).
_SINGLE_CHANNEL_MODES = ("1", "L", "P", "I", "I;16", "I;16B", "I;16L")
_FORMATS = {"PNG": "png", "JPEG": "jpeg"}
VOC_RGB_HINT = "use SegmentationClass palette PNGs or SegmentationClassRaw"


@dataclasses.dataclass(frozen=True, eq=False)
class Pair:
    """One example. `name` becomes `image/filename` (the reference stores the stem)."""

    name: str
    image: str
    label: str
    table: Optional[np.ndarray] = None  # source pixel value -> class id; None: as-is


# ----------------------------------------------------------------------------- reading


def _open(path, what, data=None, full=False):
    """(format, (width, height), mode, pixels). `full` decodes every pixel, the only
    way to see a truncated file, and checks a PNG's closing IEND chunk, as PIL decodes a
    PNG cut inside its last chunk without complaint (else: header only, pixels None)."""
    if data is None and not os.path.isfile(path):
        raise InputError(f"{path}: missing {what}")
    try:
        if full and data is None:
            with open(path, "rb") as f:
                data = f.read()
        with Image.open(io.BytesIO(data) if data is not None else path) as im:
            pixels = np.asarray(im) if full else None
            fmt, size, mode = im.format, im.size, im.mode
    except Exception as e:  # noqa: BLE001 - any decoder failure means a bad user file
        raise InputError(f"{path}: cannot decode {what} ({e})") from None
    if full and fmt == "PNG" and b"IEND" not in data[-1024:]:
        raise InputError(f"{path}: cannot decode {what} (truncated: no IEND chunk)")
    return fmt, size, mode, pixels


def check_pair(pair, rgb_hint=""):
    """The cheap, header-only checks (step 1 of the module docstring)."""
    fmt, size, _, _ = _open(pair.image, "image")
    if fmt not in _FORMATS:
        raise InputError(f"{pair.image}: image is {fmt}, not PNG or JPEG")
    if not os.path.isfile(pair.label):
        raise InputError(f"{pair.label}: missing label for image {pair.image}")
    _, label_size, mode, _ = _open(pair.label, "label")
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
    ids = _open(pair.label, "label", full=True)[3].astype(np.int64)
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


def make_example(tf, pair, info):
    """A tf.train.Example with the reference keys; the image bytes are the source file's."""
    with open(pair.image, "rb") as f:
        data = f.read()
    fmt, (width, height), _, _ = _open(pair.image, "image", data=data)  # decoded in validate
    label = _png(_class_ids(pair, info))

    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))

    return tf.train.Example(features=tf.train.Features(feature={
        common.IMAGE_ENCODED: b(data),
        common.IMAGE_FILENAME: b(pair.name.encode()),
        common.IMAGE_FORMAT: b(_FORMATS[fmt].encode()),
        common.IMAGE_HEIGHT: i(height),
        common.IMAGE_WIDTH: i(width),
        common.IMAGE_CHANNELS: i(3),
        common.LABEL_ENCODED: b(label),
        common.LABEL_FORMAT: b(b"png"),
    }))


# ----------------------------------------------------------------------------- writing


class _Progress:
    """A tqdm bar on a terminal (if tqdm is installed), else plain stdout lines.

    Never absl logging: it goes to stderr, which must hold only the `error:` line.
    """

    def __init__(self, total, desc):
        self._lock, self._bar = threading.Lock(), None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm
                self._bar = tqdm(total=total, desc=desc, unit="img")
            except ImportError:
                pass
        if self._bar is None:
            print(f"{desc}: {total} examples", flush=True)

    def update(self):
        if self._bar is not None:
            with self._lock:
                self._bar.update()

    def note(self, line):
        """A line for logs; a terminal has the bar instead."""
        if self._bar is None:
            with self._lock:
                print(line, flush=True)

    def close(self):
        if self._bar is not None:
            self._bar.close()


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
    _open(pair.image, "image", full=True)
    _class_ids(pair, info)
    progress.update()


def _write_shard(tf, path, pairs, info, stop, progress):
    with tf.io.TFRecordWriter(path + ".tmp") as writer:
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


def write_dataset(info, splits, output_dir, num_shards, num_workers=0, rgb_hint=""):
    """Validates `{split: [Pair]}`, then writes it as TFRecord shards plus `dataset_info.json`.

    Returns `{split: examples written}`. `num_workers=0`: one thread per CPU core
    (threads suffice: PIL decoding, zlib and the record writer release the GIL).
    """
    if not output_dir:
        raise InputError("--output_dir is required")
    if num_shards < 1:
        raise InputError(f"--num_shards must be >= 1, got {num_shards}")
    for split, pairs in splits.items():
        if not pairs:
            raise InputError(f"split {split!r}: no images found")
        for pair in pairs:
            check_pair(pair, rgb_hint)
    everything = [pair for pairs in splits.values() for pair in pairs]
    progress = _Progress(len(everything), "checking")
    try:
        _run(lambda pair: validate(pair, info, progress), everything, num_workers,
             threading.Event())
    finally:
        progress.close()

    import tensorflow as tf  # late: every check above answers without it

    tf.io.gfile.makedirs(output_dir)
    jobs = [job for split, pairs in splits.items()
            for job in _shards(output_dir, split, pairs, num_shards)]
    progress, stop = _Progress(len(everything), "writing"), threading.Event()
    try:
        _run(lambda job: _write_shard(tf, *job, info, stop, progress), jobs, num_workers, stop)
        for path, _ in jobs:
            tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
    except BaseException:
        for path, _ in jobs:
            if tf.io.gfile.exists(path + ".tmp"):
                tf.io.gfile.remove(path + ".tmp")
        raise
    finally:
        progress.close()
    counts = {split: len(pairs) for split, pairs in splits.items()}
    _remove_stale_shards(tf, output_dir, counts, {path for path, _ in jobs})
    _write_info(output_dir, info, counts)
    print(f"wrote {', '.join(f'{s}: {n}' for s, n in counts.items())} examples "
          f"to {output_dir}", flush=True)
    return counts


def _remove_stale_shards(tf, output_dir, splits, written):
    """A rerun with another --num_shards must not leave the old shards for a glob to find."""
    for split in splits:
        pattern = re.compile(re.escape(split) + r"-\d{5}-of-\d{5}\.tfrecord")
        for path in tf.io.gfile.glob(os.path.join(output_dir, f"{split}-*.tfrecord")):
            if pattern.fullmatch(os.path.basename(path)) and path not in written:
                tf.io.gfile.remove(path)


def _write_info(output_dir, info, counts):
    """Keeps the sizes of splits converted earlier into the same folder (same dataset)."""
    try:
        old = datasets.read_dataset_info(output_dir)
    except InputError:  # our own file, corrupt: rewrite it
        old = None
    sizes = dict(old.splits) if old is not None and old.name == info.name else {}
    sizes.update(counts)
    datasets.write_dataset_info(output_dir, dataclasses.replace(info, splits=sizes))


# ----------------------------------------------------------------------------- finding


def _require_dir(path, flag):
    if not path:
        raise InputError(f"--{flag} is required")
    if not os.path.isdir(path):
        raise InputError(f"{path}: no such directory (--{flag})")
    return path


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _by_stem(folder, extensions):
    """`{stem: path}` of the folder's files with these extensions; a stem twice is an error."""
    found = {}
    for name in sorted(os.listdir(folder)):
        if os.path.splitext(name)[1].lower() in extensions:
            stem = _stem(name)
            if stem in found:
                raise InputError(
                    f"{os.path.join(folder, name)}: ambiguous, {found[stem]} has the same stem")
            found[stem] = os.path.join(folder, name)
    return found


def read_list(path):
    """Example names of a split list: one per line, the stem of its first token.

    Plain VOC lists hold names; DeepLab-v2 style lists ("/JPEGImages/x.jpg /Seg/x.png")
    work too, as PASCAL-Person-Part lists are often shipped that way.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return [_stem(line.split()[0]) for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read split list ({e})") from None


def _split_lists(list_folder):
    lists = sorted(glob.glob(os.path.join(_require_dir(list_folder, "list_folder"), "*.txt")))
    if not lists:
        raise InputError(f"{list_folder}: no *.txt split lists")
    return {_stem(path): path for path in lists}


# ----------------------------------------------------------------------------- datasets


def convert_cityscapes(cityscapes_root, output_dir, splits=(), num_shards=10,
                       num_workers=0):
    """`leftImg8bit/{split}/{city}/*_leftImg8bit.png` -> `{split}_fine` shards.

    Labels: `*_gtFine_labelTrainIds.png` if prepared, else `*_gtFine_labelIds.png` mapped
    to train ids (all other ids, and 255, -> 255). `splits=()`: every split present.
    """
    image_root = os.path.join(_require_dir(cityscapes_root, "cityscapes_root"), "leftImg8bit")
    present = [s for s in ("train", "val", "test") if os.path.isdir(os.path.join(image_root, s))]
    for split in splits:
        if split not in present:
            raise InputError(f"{os.path.join(image_root, split)}: no such directory (--splits)")
    if not present:
        raise InputError(f"{image_root}: no train, val or test folder")
    table = datasets.cityscapes_label_id_to_train_id_table()
    found = {}
    for split in splits or present:
        pairs = []
        suffix = "_leftImg8bit.png"
        for image in sorted(glob.glob(os.path.join(image_root, split, "*", "*" + suffix))):
            name = os.path.basename(image)[:-len(suffix)]
            city = os.path.basename(os.path.dirname(image))
            base = os.path.join(cityscapes_root, "gtFine", split, city, name + "_gtFine_")
            if os.path.isfile(base + "labelTrainIds.png"):
                pairs.append(Pair(name, image, base + "labelTrainIds.png"))
            else:
                pairs.append(Pair(name, image, base + "labelIds.png", table))
        found[f"{split}_fine"] = pairs
    return write_dataset(datasets.REGISTRY["cityscapes"], found, output_dir, num_shards,
                         num_workers)


def _convert_lists(info, image_folder, semantic_segmentation_folder, list_folder, output_dir,
                   image_format, label_format, num_shards, num_workers, rgb_hint="",
                   extra_label_folders=None):
    """Datasets given as split lists of names (VOC, Person-Part): every `*.txt` is a split.

    `extra_label_folders[split]` is searched before `semantic_segmentation_folder`.
    """
    _require_dir(image_folder, "image_folder")
    _require_dir(semantic_segmentation_folder, "semantic_segmentation_folder")
    lists = _split_lists(list_folder)
    splits = {}
    for split, list_path in lists.items():
        folders = [semantic_segmentation_folder]
        if (extra_label_folders or {}).get(split):
            folders.insert(0, extra_label_folders[split])
        pairs = []
        for name in read_list(list_path):
            labels = [os.path.join(f, f"{name}.{label_format}") for f in folders]
            label = next((p for p in labels if os.path.isfile(p)), labels[-1])
            pairs.append(Pair(name, os.path.join(image_folder, f"{name}.{image_format}"), label))
        splits[split] = pairs
    return write_dataset(info, splits, output_dir, num_shards, num_workers, rgb_hint)


def convert_voc2012(image_folder, semantic_segmentation_folder, list_folder, output_dir,
                    image_format="jpg", label_format="png", train_aug_label_folder=None,
                    num_shards=4, num_workers=0):
    """PASCAL VOC 2012; with `train_aug_label_folder` (SBD labels) the `train_aug` list
    takes its labels from there first, then from `semantic_segmentation_folder`
    (SBD-converted folders often lack the 1,464 VOC train labels)."""
    extra = None
    if train_aug_label_folder:
        _require_dir(train_aug_label_folder, "train_aug_label_folder")
        if "train_aug" not in _split_lists(list_folder):
            raise InputError(f"{list_folder}: --train_aug_label_folder needs a train_aug.txt")
        extra = {"train_aug": train_aug_label_folder}
    return _convert_lists(datasets.REGISTRY["pascal_voc_seg"], image_folder,
                          semantic_segmentation_folder, list_folder, output_dir, image_format,
                          label_format, num_shards, num_workers, VOC_RGB_HINT, extra)


def convert_person_part(image_folder, semantic_segmentation_folder, list_folder, output_dir,
                        image_format="jpg", label_format="png", num_shards=4, num_workers=0):
    """PASCAL-Person-Part (7 classes): VOC images, single-channel part labels."""
    return _convert_lists(datasets.REGISTRY["pascal_person_part"], image_folder,
                          semantic_segmentation_folder, list_folder, output_dir, image_format,
                          label_format, num_shards, num_workers)


def convert_ade20k(output_dir, train_image_folder=None, train_image_label_folder=None,
                   val_image_folder=None, val_image_label_folder=None, ade20k_root=None,
                   num_shards=4, num_workers=0):
    """ADE20K (SceneParsing): labels kept as-is, 0 = other/ignore, 1..150 classes.

    `ade20k_root` (ADEChallengeData2016) fills the folders not given explicitly.
    """
    folders = {"train": [train_image_folder, train_image_label_folder],
               "val": [val_image_folder, val_image_label_folder]}
    if ade20k_root:
        _require_dir(ade20k_root, "ade20k_root")
        for split, sub in (("train", "training"), ("val", "validation")):
            folders[split][0] = folders[split][0] or os.path.join(ade20k_root, "images", sub)
            folders[split][1] = folders[split][1] or os.path.join(ade20k_root, "annotations", sub)
    splits = {}
    for split, (images, labels) in folders.items():
        if not images and not labels:
            continue
        _require_dir(images, f"{split}_image_folder")
        _require_dir(labels, f"{split}_image_label_folder")
        splits[split] = [Pair(stem, path, os.path.join(labels, stem + ".png"))
                         for stem, path in _by_stem(images, IMAGE_EXTENSIONS).items()]
    if not splits:
        raise InputError("give --ade20k_root or --train_image_folder/--val_image_folder "
                         "with their label folders")
    return write_dataset(datasets.REGISTRY["ade20k"], splits, output_dir, num_shards,
                         num_workers)


def load_label_map(path, num_classes, ignore_label):
    """A JSON object {source pixel value: class id} -> lookup table (unlisted -> ignore)."""
    try:
        with open(path, encoding="utf-8") as f:
            mapping = json.load(f)
    except OSError as e:
        raise InputError(f"{path}: cannot read label map ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(mapping, dict) or not mapping:
        raise InputError(f"{path}: expected a JSON object {{pixel value: class id}}")
    table = np.full(65536, ignore_label, dtype=np.uint8)
    for key, value in mapping.items():
        try:
            source = int(key)
        except ValueError:
            raise InputError(f"{path}: key {key!r} is not an integer pixel value") from None
        ok = isinstance(value, int) and not isinstance(value, bool) and (
            0 <= value < num_classes or value == ignore_label)
        if not 0 <= source < len(table) or not ok:
            raise InputError(f"{path}: {key!r}: {value!r} is not pixel value -> class id in "
                             f"[0, {num_classes}) or the ignore label {ignore_label}")
        table[source] = value
    return table


def convert_folder(image_folder, semantic_segmentation_folder, output_dir, num_classes,
                   dataset_name, ignore_label=255, class_names=(), label_map=None,
                   split="train", list_folder=None, num_shards=4, num_workers=0):
    """A user's own dataset: images and labels matched by file stem.

    One split named `split` from every image in the folder, or, with `list_folder`,
    one split per `*.txt` list of names. `label_map`: JSON file, see `load_label_map`.
    """
    if not dataset_name:
        raise InputError("--dataset_name is required")
    if not 1 <= (num_classes or 0) <= 256:
        raise InputError(f"--num_classes must be in [1, 256], got {num_classes}")
    if not 0 <= ignore_label <= 255:
        raise InputError(f"--ignore_label must be in [0, 255], got {ignore_label}")
    info = datasets.DatasetInfo(name=dataset_name, num_classes=num_classes,
                                ignore_label=ignore_label, class_names=tuple(class_names or ()))
    table = load_label_map(label_map, num_classes, ignore_label) if label_map else None
    images = _by_stem(_require_dir(image_folder, "image_folder"), IMAGE_EXTENSIONS)
    label_dir = _require_dir(semantic_segmentation_folder, "semantic_segmentation_folder")
    labels = _by_stem(label_dir, LABEL_EXTENSIONS)
    if list_folder:
        names = {s: read_list(p) for s, p in _split_lists(list_folder).items()}
    else:
        names = {split: list(images)}
    splits = {}
    for split_name, stems in names.items():
        pairs = []
        for stem in stems:
            if stem not in images:
                raise InputError(f"{os.path.join(image_folder, stem)}.*: missing image "
                                 f"(listed in split {split_name!r})")
            label = labels.get(stem, os.path.join(label_dir, stem + ".png"))
            pairs.append(Pair(stem, images[stem], label, table))
        splits[split_name] = pairs
    return write_dataset(info, splits, output_dir, num_shards, num_workers)
