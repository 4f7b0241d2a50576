"""The dataset registry: what every binary needs to know about a dataset.

A converter writes `dataset_info.json` beside its TFRecords; binaries read it, so
a user's own dataset needs no code edit. The built-in entries carry the
reference DeepLab's names, class counts, ignore labels and colormaps.
"""
import dataclasses
import json
import os

import numpy as np

from deeplab_dpc import common, files
from deeplab_dpc.errors import InputError

# Cityscapes label ids -> train ids (everything else -> 255).
CITYSCAPES_TRAIN_ID_TO_LABEL_ID = (
    7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)


def cityscapes_label_id_to_train_id_table():
    """A 256-entry lookup table: `table[label_id] = train_id` (255 for void)."""
    table = np.full(256, 255, dtype=np.uint8)
    for train_id, label_id in enumerate(CITYSCAPES_TRAIN_ID_TO_LABEL_ID):
        table[label_id] = train_id
    return table


CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
    "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
    "truck", "bus", "train", "motorcycle", "bicycle")
CITYSCAPES_COLORMAP = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70),
    (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32))

PASCAL_VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
    "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor")
PERSON_PART_CLASSES = (
    "background", "head", "torso", "upper arms", "lower arms", "upper legs",
    "lower legs")


def pascal_colormap(n=256):
    """The PASCAL VOC palette: bits of the index interleaved into R, G, B."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


# The ADE20K benchmark's palette, as the reference's `create_ade20k_label_colormap`
# (0 = other/ignore).
ADE20K_COLORMAP = (
    (0, 0, 0), (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3),
    (120, 120, 80), (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7),
    (224, 5, 255), (235, 255, 7), (150, 5, 61), (120, 120, 70), (8, 255, 51), (255, 6, 82),
    (143, 255, 140), (204, 255, 4), (255, 51, 7), (204, 70, 3), (0, 102, 200),
    (61, 230, 250), (255, 6, 51), (11, 102, 255), (255, 7, 71), (255, 9, 224), (9, 7, 230),
    (220, 220, 220), (255, 9, 92), (112, 9, 255), (8, 255, 214), (7, 255, 224),
    (255, 184, 6), (10, 255, 71), (255, 41, 10), (7, 255, 255), (224, 255, 8),
    (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20), (255, 8, 41),
    (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255),
    (140, 140, 140), (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0),
    (153, 255, 0), (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255),
    (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112), (0, 255, 133),
    (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0), (0, 143, 255), (51, 255, 0),
    (0, 82, 255), (0, 255, 41), (0, 255, 173), (10, 0, 255), (173, 255, 0), (0, 255, 153),
    (255, 92, 0), (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20),
    (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194),
    (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255),
    (0, 255, 163), (255, 153, 0), (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255),
    (163, 255, 0), (255, 235, 0), (8, 184, 170), (133, 0, 255), (0, 255, 92), (184, 0, 255),
    (255, 0, 31), (0, 184, 255), (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255),
    (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0),
    (255, 0, 163), (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0),
    (255, 0, 235), (245, 0, 255), (255, 0, 122), (255, 245, 0), (10, 190, 212),
    (214, 255, 0), (0, 204, 255), (20, 0, 255), (255, 255, 0), (0, 153, 255), (0, 41, 255),
    (0, 255, 204), (41, 0, 255), (41, 255, 0), (173, 0, 255), (0, 245, 255), (71, 0, 255),
    (122, 0, 255), (0, 255, 184), (0, 92, 255), (184, 255, 0), (0, 133, 255), (255, 214, 0),
    (25, 194, 194), (102, 255, 0), (92, 0, 255),
)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What binaries need about a dataset; round-trips through `dataset_info.json`."""

    name: str
    num_classes: int
    ignore_label: int = common.DEFAULT_IGNORE_LABEL
    class_names: tuple = ()
    colormap: tuple = ()  # one (r, g, b) per class id
    splits: dict = dataclasses.field(default_factory=dict)  # split -> num examples
    # split -> its shard file names: the manifest that readers on object stores trust
    # (there a rename is a copy, so a half-written shard can carry its final name).
    shards: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.num_classes < 1:
            raise InputError(f"dataset {self.name!r}: num_classes must be >= 1")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise InputError(
                f"dataset {self.name!r}: {len(self.class_names)} class_names for "
                f"{self.num_classes} classes")
        if self.colormap and len(self.colormap) < self.num_classes:
            raise InputError(
                f"dataset {self.name!r}: colormap has {len(self.colormap)} colours "
                f"for {self.num_classes} classes")

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["class_names"] = list(self.class_names)
        d["colormap"] = [list(c) for c in self.colormap]
        return d

    @classmethod
    def from_dict(cls, d, source="dataset_info"):
        """From parsed JSON, checked field by field; errors name `source` and the field."""
        if not isinstance(d, dict):
            raise InputError(f"{source}: expected a JSON object")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise InputError(f"{source}: unknown field(s) {sorted(unknown)}")
        if "name" not in d or "num_classes" not in d:
            raise InputError(f"{source}: needs at least 'name' and 'num_classes'")

        def bad(field, expected):
            return InputError(f"{source}: field {field!r}: expected {expected}, got "
                              f"{json.dumps(d[field])[:60]}")

        def is_int(v):
            return isinstance(v, int) and not isinstance(v, bool)

        if not isinstance(d["name"], str):
            raise bad("name", "a string")
        for field in ("num_classes", "ignore_label"):
            if field in d and not is_int(d[field]):
                raise bad(field, "an integer")
        names = d.get("class_names", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise bad("class_names", "a list of strings")
        cmap = d.get("colormap", [])
        if not isinstance(cmap, list) or not all(
                isinstance(c, list) and len(c) == 3 and all(is_int(v) and 0 <= v < 256
                                                            for v in c) for c in cmap):
            raise bad("colormap", "a list of [r, g, b] values in [0, 255]")
        splits = d.get("splits", {})
        if not isinstance(splits, dict) or not all(is_int(n) and n >= 0
                                                   for n in splits.values()):
            raise bad("splits", "an object {split: number of examples}")
        shards = d.get("shards", {})
        if not isinstance(shards, dict) or not all(
                isinstance(v, list) and all(isinstance(n, str) for n in v)
                for v in shards.values()):
            raise bad("shards", "an object {split: [shard file names]}")
        d = dict(d, class_names=tuple(names), colormap=tuple(tuple(c) for c in cmap),
                 splits=dict(splits), shards={k: list(v) for k, v in shards.items()})
        try:
            return cls(**d)
        except InputError as e:
            raise InputError(f"{source}: {e}") from None

    def colormap_array(self):
        """A 256x3 uint8 palette (ignore and unknown ids black unless given)."""
        cmap = np.zeros((256, 3), dtype=np.uint8)
        if self.colormap:
            cmap[: len(self.colormap)] = np.asarray(self.colormap, dtype=np.uint8)
        else:
            cmap[:] = pascal_colormap(256)
        return cmap


def _tuples(cmap):
    return tuple(tuple(int(v) for v in c) for c in cmap)


REGISTRY = {
    "cityscapes": DatasetInfo(
        name="cityscapes", num_classes=19, ignore_label=255,
        class_names=CITYSCAPES_CLASSES, colormap=CITYSCAPES_COLORMAP,
        splits={"train_fine": 2975, "val_fine": 500, "test_fine": 1525,
                "trainval_fine": 3475, "train_coarse": 22973}),
    "pascal_voc_seg": DatasetInfo(
        name="pascal_voc_seg", num_classes=21, ignore_label=255,
        class_names=PASCAL_VOC_CLASSES, colormap=_tuples(pascal_colormap(21)),
        splits={"train": 1464, "val": 1449, "trainval": 2913, "train_aug": 10582}),
    "pascal_person_part": DatasetInfo(
        name="pascal_person_part", num_classes=7, ignore_label=255,
        class_names=PERSON_PART_CLASSES, colormap=_tuples(pascal_colormap(7)),
        splits={"train": 1716, "val": 1817}),
    "ade20k": DatasetInfo(
        name="ade20k", num_classes=151, ignore_label=0,
        colormap=ADE20K_COLORMAP,
        splits={"train": 20210, "val": 2000}),
}


def register(info):
    """Adds or replaces a registry entry (the synthetic set registers itself)."""
    REGISTRY[info.name] = info
    return info


def read_dataset_info(dataset_dir):
    """Reads `dataset_dir/dataset_info.json`; None if there is none."""
    path = os.path.join(dataset_dir, common.DATASET_INFO_FILE)
    from deeplab_dpc.tf_import import import_tensorflow

    tf = import_tensorflow()  # gfile: the same code reads local disk and GCS.

    if not tf.io.gfile.exists(path):
        return None
    d = files.read_json(path, common.DATASET_INFO_FILE)
    if not isinstance(d, dict):
        raise InputError(f"{path}: expected a JSON object")
    return DatasetInfo.from_dict(d, source=path)


def write_dataset_info(dataset_dir, info):
    """Writes `dataset_info.json` atomically (temp file, then rename)."""
    return files.write_json_atomically(os.path.join(dataset_dir, common.DATASET_INFO_FILE),
                                       info.to_dict())


def get_dataset_info(name=None, dataset_dir=None):
    """The dataset's info: `dataset_info.json` in `dataset_dir` wins over the registry."""
    info = read_dataset_info(dataset_dir) if dataset_dir else None
    if info is not None:
        return info
    if name in REGISTRY:
        return REGISTRY[name]
    where = f" and no {common.DATASET_INFO_FILE} in {dataset_dir}" if dataset_dir else ""
    raise InputError(
        f"unknown dataset {name!r}{where}; known: {', '.join(sorted(REGISTRY))}")
