"""The converters in-process, on miniature datasets in the real layouts."""
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from deeplab_dpc import common
from deeplab_dpc.data import datasets
from deeplab_dpc.errors import InputError
from tests.data import convert_fakes as fakes
from deeplab_dpc.data.convert import sources, writer
from deeplab_dpc.progress import Progress


def _info(output_dir):
    with open(os.path.join(output_dir, common.DATASET_INFO_FILE)) as f:
        return json.load(f)


def test_cityscapes(tmp_path):
    expected = fakes.cityscapes(str(tmp_path / "cityscapes"))
    out = str(tmp_path / "out")
    counts = sources.convert_cityscapes(str(tmp_path / "cityscapes"), out, num_workers=2)
    assert counts == {"train_fine": 4, "val_fine": 1, "test_fine": 1}
    names = set().union(*(fakes.shard_names(s, 10) for s in counts))
    assert set(os.listdir(out)) == names | {common.DATASET_INFO_FILE}
    for split, pairs in expected.items():
        records = fakes.check_split(out, split, pairs)
        assert all(r[common.IMAGE_FORMAT] == b"png" for r in records.values())
    train = np.concatenate([label.ravel() for _, label in expected["train_fine"].values()])
    assert set(train) == set(range(19)) | {255}  # every train id and void were exercised
    info = _info(out)
    reference = datasets.REGISTRY["cityscapes"]
    assert info["splits"] == counts
    assert (info["name"], info["num_classes"], info["ignore_label"]) == ("cityscapes", 19, 255)
    assert info["class_names"] == list(reference.class_names)


def test_voc_palette_and_raw_labels_agree(tmp_path):
    base, expected = fakes.voc(str(tmp_path))
    assert Image.open(os.path.join(base, "SegmentationClass", "2007_000032.png")).mode == "P"
    lists = os.path.join(base, "ImageSets", "Segmentation")
    outs = {}
    for folder in ("SegmentationClass", "SegmentationClassRaw"):
        outs[folder] = str(tmp_path / folder)
        sources.convert_voc2012(
            os.path.join(base, "JPEGImages"), os.path.join(base, folder), lists,
            outs[folder], train_aug_label_folder=os.path.join(base, "SegmentationClassAug"),
            num_workers=2)
    for split, pairs in expected.items():
        palette = fakes.check_split(outs["SegmentationClass"], split, pairs)
        raw = fakes.check_split(outs["SegmentationClassRaw"], split, pairs)
        for name in pairs:
            assert palette[name][common.LABEL_ENCODED] == raw[name][common.LABEL_ENCODED]
    assert _info(outs["SegmentationClass"])["splits"] == {
        "train": 3, "train_aug": 5, "trainval": 5, "val": 2}
    assert set(os.listdir(outs["SegmentationClass"])) == set().union(
        *(fakes.shard_names(s, 4) for s in expected)) | {common.DATASET_INFO_FILE}


def test_voc_train_aug_folder_needs_its_list(tmp_path):
    base, _ = fakes.voc(str(tmp_path))
    lists = os.path.join(base, "ImageSets", "Segmentation")
    os.remove(os.path.join(lists, "train_aug.txt"))
    with pytest.raises(InputError, match="train_aug.txt"):
        sources.convert_voc2012(
            os.path.join(base, "JPEGImages"), os.path.join(base, "SegmentationClass"), lists,
            str(tmp_path / "out"),
            train_aug_label_folder=os.path.join(base, "SegmentationClassAug"))


def test_ade20k_keeps_ignore_zero(tmp_path):
    base, expected = fakes.ade20k(str(tmp_path))
    out = str(tmp_path / "out")
    sources.convert_ade20k(out, ade20k_root=base, num_shards=2, num_workers=2)
    for split, pairs in expected.items():
        records = fakes.check_split(out, split, pairs)
        assert any((r["label"] == 0).any() for r in records.values())
    info = _info(out)
    assert (info["num_classes"], info["ignore_label"], info["splits"]) == (
        151, 0, {"train": 3, "val": 1})


def test_person_part(tmp_path):
    expected = fakes.person_part(str(tmp_path))
    out = str(tmp_path / "out")
    sources.convert_person_part(str(tmp_path / "JPEGImages"),
                                   str(tmp_path / "SegmentationPart"),
                                   str(tmp_path / "lists"), out, num_shards=1)
    for split, pairs in expected.items():
        fakes.check_split(out, split, pairs)
    info = _info(out)
    assert (info["name"], info["num_classes"], len(info["class_names"])) == (
        "pascal_person_part", 7, 7)


def test_folder_with_label_map(tmp_path):
    expected = fakes.folder(str(tmp_path))
    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps(fakes.FOLDER_LABEL_MAP))
    out = str(tmp_path / "out")
    sources.convert_folder(str(tmp_path / "images"), str(tmp_path / "labels"), out, 3,
                              "toy", class_names=["bg", "thing", "edge"],
                              label_map=str(label_map), split="all", num_shards=2)
    fakes.check_split(out, "all", expected)
    info = _info(out)
    assert info["splits"] == {"all": 3} and info["class_names"] == ["bg", "thing", "edge"]


def test_folder_rerun_replaces_shards_and_keeps_other_splits(tmp_path):
    expected = fakes.folder(str(tmp_path))
    out = str(tmp_path / "out")
    args = (str(tmp_path / "images"), str(tmp_path / "labels"), out, 256, "raw")
    sources.convert_folder(*args, split="train", num_shards=3)
    sources.convert_folder(*args, split="val", num_shards=1)
    sources.convert_folder(*args, split="train", num_shards=2)
    assert set(os.listdir(out)) == (fakes.shard_names("train", 2) | fakes.shard_names("val", 1)
                                    | {common.DATASET_INFO_FILE})
    assert _info(out)["splits"] == {"train": 3, "val": 3}
    raw = {n: (image, np.asarray(Image.open(tmp_path / "labels" / f"{n}.png")))
           for n, (image, _) in expected.items()}
    fakes.check_split(out, "train", raw)  # no label map: values kept


@pytest.mark.parametrize("broken", ["image", "label"])
def test_truncated_file_writes_nothing(tmp_path, broken):
    """The header reads, the pixels do not: found by validation, before any writing."""
    fakes.folder(str(tmp_path), count=4)
    path = os.path.join(tmp_path, broken + "s", "img3" + (".jpg" if broken == "image" else ".png"))
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 20)
    with pytest.raises(InputError, match=f"{path}: cannot decode {broken}"):
        sources.convert_folder(str(tmp_path / "images"), str(tmp_path / "labels"),
                                  str(tmp_path / "out"), 256, "raw", num_workers=2)
    assert not (tmp_path / "out").exists()


def test_write_failure_removes_every_shard_of_the_run(tmp_path, monkeypatch):
    """A failure validation cannot foresee (say, disk full) in the last shard: the shards
    other workers already finished go too."""
    fakes.folder(str(tmp_path), count=6)
    finished, make_example = [], writer.make_example

    def flaky(tf, pair, info):
        if pair.name == "img5":
            raise OSError("No space left on device")
        return make_example(tf, pair, info)

    monkeypatch.setattr(writer, "make_example", flaky)
    monkeypatch.setattr(Progress, "note", lambda self, line: finished.append(line))
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space"):
        sources.convert_folder(str(tmp_path / "images"), str(tmp_path / "labels"),
                                  str(out), 256, "raw", num_shards=3, num_workers=2)
    assert finished and os.listdir(out) == []


@pytest.mark.parametrize("mapping, message", [
    ("{", "not valid JSON"), ('{"x": 1}', "not an integer"), ('{"3": 9}', "'3': 9"),
    ("[1]", "JSON object")])
def test_bad_label_map(tmp_path, mapping, message):
    path = tmp_path / "map.json"
    path.write_text(mapping)
    with pytest.raises(InputError, match=message):
        sources.load_label_map(str(path), 3, 255)


@pytest.mark.parametrize("convert, message", [
    (lambda d: sources.convert_cityscapes(f"{d}/nowhere", f"{d}/out"),
     "nowhere: no such directory (--cityscapes_root)"),
    (lambda d: sources.convert_cityscapes(d, f"{d}/out"), "no train, val or test folder"),
    (lambda d: sources.convert_ade20k(f"{d}/out"), "give --ade20k_root"),
    (lambda d: sources.convert_ade20k(f"{d}/out", train_image_folder=d),
     "--train_image_label_folder is required"),
    (lambda d: sources.convert_folder(d, d, f"{d}/out", None, "x"), "--num_classes"),
])
def test_bad_arguments(tmp_path, convert, message):
    """The library names its parameters; a binary shows them as the flags (as_flags)."""
    (tmp_path / "leftImg8bit").mkdir()
    with pytest.raises(InputError, match=re.escape(message.replace("--", ""))) as error:
        convert(str(tmp_path))
    assert message in error.value.as_flags()
