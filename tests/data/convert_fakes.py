"""Miniature datasets in the real on-disk layouts, and a reader for what was written.

Each builder returns `{split: {name: (image_path, expected_class_ids)}}` as the
converter should write it.
"""
import os

import numpy as np
from PIL import Image

from deeplab_dpc import common
from deeplab_dpc.data import datasets


def _rng(seed):
    return np.random.default_rng(seed)


def save(path, array, palette=None, **kwargs):
    """Writes an image; `palette` makes it a mode-P PNG whose indices are `array`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.fromarray(array)
    if palette is not None:
        im.putpalette(palette)
    im.save(path, **kwargs)
    return path


def rgb(height, width, seed):
    return _rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def labels(height, width, values, seed, border=None):
    """Random class ids drawn from `values`, every value present; optional 2-px border."""
    values = np.asarray(values, dtype=np.uint8)
    out = _rng(seed).choice(values, (height, width))
    inner = out[2:-2, 2:-2] if border is not None else out
    inner.flat[:len(values)] = values
    if border is not None:
        out[:2], out[-2:], out[:, :2], out[:, -2:] = border, border, border, border
    return out


def cityscapes(root):
    """2 train cities with 2 images each, 1 val and 1 test image, 32x64.

    labelIds hold all ids 0..33 plus 255 (the uint8 image of the void id -1, which the
    official scripts never draw). aachen has labelTrainIds prepared beside labelIds,
    bochum's second image only labelTrainIds, the rest only labelIds.
    """
    table = datasets.cityscapes_label_id_to_train_id_table()
    ids = list(range(34)) + [255]
    layout = {"train": [("aachen", 0), ("aachen", 1), ("bochum", 0), ("bochum", 1)],
              "val": [("frankfurt", 0)], "test": [("berlin", 0)]}
    expected, seed = {}, 0
    for split, images in layout.items():
        expected[f"{split}_fine"] = {}
        for city, frame in images:
            seed += 1
            name = f"{city}_{frame:06d}_000019"
            image = save(os.path.join(root, "leftImg8bit", split, city,
                                      name + "_leftImg8bit.png"), rgb(32, 64, seed))
            label_ids = labels(32, 64, [0] if split == "test" else ids, seed)
            gt = os.path.join(root, "gtFine", split, city, name + "_gtFine_")
            if (city, frame) != ("bochum", 1):
                save(gt + "labelIds.png", label_ids)
            if city == "aachen" or (city, frame) == ("bochum", 1):
                save(gt + "labelTrainIds.png", table[label_ids])
            expected[f"{split}_fine"][name] = (image, table[label_ids])
    return expected


VOC_SHAPE = (20, 24)


def voc(root):
    """VOCdevkit/VOC2012 with palette SegmentationClass, SegmentationClassRaw, and
    SegmentationClassAug (SBD) for train_aug; 255 borders.

    The aug folder also holds a *different* label for the first train image, which
    train_aug must take (aug folder first) and train must not.
    """
    base = os.path.join(root, "VOCdevkit", "VOC2012")
    palette = datasets.pascal_colormap(256).flatten().tolist()
    names = {"train": ["2007_000032", "2007_000039", "2007_000063"],
             "val": ["2007_000033", "2007_000042"], "aug": ["2008_000002", "2008_000003"]}
    ids = list(range(21))
    truth, seed = {}, 100
    for name in names["train"] + names["val"] + names["aug"]:
        seed += 1
        image = save(os.path.join(base, "JPEGImages", name + ".jpg"), rgb(*VOC_SHAPE, seed),
                     quality=90)
        label = labels(*VOC_SHAPE, ids, seed, border=255)
        if name in names["aug"]:
            save(os.path.join(base, "SegmentationClassAug", name + ".png"), label)
        else:
            save(os.path.join(base, "SegmentationClass", name + ".png"), label, palette)
            save(os.path.join(base, "SegmentationClassRaw", name + ".png"), label)
        truth[name] = (image, label)
    first = names["train"][0]
    aug_first = labels(*VOC_SHAPE, ids, 999, border=255)
    save(os.path.join(base, "SegmentationClassAug", first + ".png"), aug_first)
    lists = {"train": names["train"], "val": names["val"],
             "trainval": names["train"] + names["val"],
             "train_aug": names["train"] + names["aug"]}
    expected = {}
    for split, members in lists.items():
        write_list(os.path.join(base, "ImageSets", "Segmentation", split + ".txt"), members)
        expected[split] = {n: truth[n] for n in members}
    expected["train_aug"][first] = (truth[first][0], aug_first)
    return base, expected


def write_list(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def ade20k(root):
    """ADEChallengeData2016: 3 training images (one grayscale JPEG), 1 validation."""
    base = os.path.join(root, "ADEChallengeData2016")
    expected, seed = {}, 200
    for split, sub, count in (("train", "training", 3), ("val", "validation", 1)):
        expected[split] = {}
        for i in range(1, count + 1):
            seed += 1
            name = f"ADE_{split}_{i:08d}"
            pixels = rgb(24, 20, seed)[..., 0] if i == 2 else rgb(24, 20, seed)
            image = save(os.path.join(base, "images", sub, name + ".jpg"), pixels)
            label = labels(24, 20, range(151), seed)  # 0 = other, kept
            save(os.path.join(base, "annotations", sub, name + ".png"), label)
            expected[split][name] = (image, label)
    return base, expected


def person_part(root):
    """Person-Part: a DeepLab-v2 style train list (image and label paths), a plain val list."""
    expected, seed = {"train": {}, "val": {}}, 300
    for split, names in (("train", ["2008_000003", "2008_000008"]), ("val", ["2008_000026"])):
        for name in names:
            seed += 1
            image = save(os.path.join(root, "JPEGImages", name + ".jpg"), rgb(16, 18, seed))
            label = labels(16, 18, list(range(7)) + [255], seed)
            save(os.path.join(root, "SegmentationPart", name + ".png"), label)
            expected[split][name] = (image, label)
    write_list(os.path.join(root, "lists", "train.txt"),
               [f"/JPEGImages/{n}.jpg /SegmentationPart/{n}.png" for n in expected["train"]])
    write_list(os.path.join(root, "lists", "val.txt"), list(expected["val"]))
    return expected


FOLDER_LABEL_MAP = {"0": 0, "128": 1, "255": 2}


def folder(root, count=3):
    """A user's folders: PNG and JPEG images, labels valued 0/128/255 (+7, unmapped)."""
    table = np.full(256, 255, np.uint8)
    for source, target in FOLDER_LABEL_MAP.items():
        table[int(source)] = target
    expected = {}
    for i in range(count):
        name = f"img{i}"
        ext = ".jpg" if i % 2 else ".png"
        image = save(os.path.join(root, "images", name + ext), rgb(12, 10, 400 + i))
        label = labels(12, 10, [0, 128, 255, 7], 400 + i)
        save(os.path.join(root, "labels", name + ".png"), label)
        expected[name] = (image, table[label])
    return expected


def read_records(output_dir, split):
    """`{filename: parsed example}` with the label decoded; checks the key set."""
    import tensorflow as tf

    strings = (common.IMAGE_ENCODED, common.IMAGE_FILENAME, common.IMAGE_FORMAT,
               common.LABEL_ENCODED, common.LABEL_FORMAT)
    ints = (common.IMAGE_HEIGHT, common.IMAGE_WIDTH, common.IMAGE_CHANNELS)
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in strings}
    spec.update({k: tf.io.FixedLenFeature([], tf.int64) for k in ints})
    files = sorted(tf.io.gfile.glob(os.path.join(output_dir, f"{split}-*.tfrecord")))
    out = {}
    for raw in tf.data.TFRecordDataset(files):
        keys = set(tf.train.Example.FromString(raw.numpy()).features.feature)
        assert keys == set(spec), keys
        ex = {k: v.numpy() for k, v in tf.io.parse_single_example(raw, spec).items()}
        ex["label"] = tf.io.decode_png(ex[common.LABEL_ENCODED]).numpy()
        ex["image"] = tf.io.decode_image(ex[common.IMAGE_ENCODED], channels=3).numpy()
        out[ex[common.IMAGE_FILENAME].decode()] = ex
    return out


def check_split(output_dir, split, expected):
    """Every record of `split` is the expected image (byte-identical) and class ids."""
    records = read_records(output_dir, split)
    assert sorted(records) == sorted(expected)
    for name, (image_path, class_ids) in expected.items():
        ex = records[name]
        with open(image_path, "rb") as f:
            assert ex[common.IMAGE_ENCODED] == f.read(), name
        fmt = b"jpeg" if image_path.endswith(".jpg") else b"png"
        assert ex[common.IMAGE_FORMAT] == fmt
        assert ex[common.LABEL_FORMAT] == b"png"
        assert (ex[common.IMAGE_HEIGHT], ex[common.IMAGE_WIDTH]) == class_ids.shape
        assert ex[common.IMAGE_CHANNELS] == 3 and ex["image"].shape == class_ids.shape + (3,)
        assert ex["label"].shape == class_ids.shape + (1,)  # single channel
        np.testing.assert_array_equal(ex["label"][..., 0], class_ids, err_msg=name)
    return records


def shard_names(split, num_shards):
    return {common.SHARD_PATTERN.format(split=split, index=i, num_shards=num_shards)
            for i in range(num_shards)}
