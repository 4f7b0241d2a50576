"""Finding the (image, label) pairs of each dataset: the converters behind `tfrecords_tools/`.

Every `build_*_data` binary only parses flags and calls one `convert_*` function
here, so the tests call the same code. Errors name the function's parameters,
which are the reference converters' flag names.
"""
import glob
import os

import numpy as np

from deeplab_dpc import files
from deeplab_dpc.data import datasets
from deeplab_dpc.data.convert.writer import Pair, write_dataset
from deeplab_dpc.errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
LABEL_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")
VOC_RGB_HINT = "use SegmentationClass palette PNGs or SegmentationClassRaw"


def _require_dir(path, param):
    if not path:
        raise InputError(f"{param} is required", param=param)
    if not os.path.isdir(path):
        raise InputError(f"{path}: no such directory ({param})", param=param)
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
            raise InputError(f"{os.path.join(image_root, split)}: no such directory (splits)",
                             param="splits")
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
            raise InputError(f"{list_folder}: train_aug_label_folder needs a train_aug.txt",
                             param="train_aug_label_folder")
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
        raise InputError("give ade20k_root or train_image_folder/val_image_folder "
                         "with their label folders",
                         param=("ade20k_root", "train_image_folder", "val_image_folder"))
    return write_dataset(datasets.REGISTRY["ade20k"], splits, output_dir, num_shards,
                         num_workers)


def load_label_map(path, num_classes, ignore_label):
    """A JSON object {source pixel value: class id} -> lookup table (unlisted -> ignore)."""
    # A full 16-bit map with indentation is about 1 MiB: allow four.
    mapping = files.read_json(path, "label map", max_bytes=4 * files.MAX_JSON_BYTES)
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
                   split="train", list_folder=None, num_shards=4, num_workers=0,
                   progress=True):
    """A user's own dataset: images and labels matched by file stem.

    One split named `split` from every image in the folder, or, with `list_folder`,
    one split per `*.txt` list of names. `label_map`: JSON file, see `load_label_map`.
    """
    if not dataset_name:
        raise InputError("dataset_name is required", param="dataset_name")
    if not 1 <= (num_classes or 0) <= 256:
        raise InputError(f"num_classes must be in [1, 256], got {num_classes}",
                         param="num_classes")
    if not 0 <= ignore_label <= 255:
        raise InputError(f"ignore_label must be in [0, 255], got {ignore_label}",
                         param="ignore_label")
    info = datasets.DatasetInfo(name=dataset_name, num_classes=num_classes,
                                ignore_label=ignore_label, class_names=tuple(class_names or ()))
    table = load_label_map(label_map, num_classes, ignore_label) if label_map else None
    images = _by_stem(_require_dir(image_folder, "image_folder"), IMAGE_EXTENSIONS)
    if not images:
        raise InputError(f"{image_folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) in "
                         "image_folder", param="image_folder")
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
    return write_dataset(info, splits, output_dir, num_shards, num_workers, progress=progress)
