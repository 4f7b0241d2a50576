"""The `python -m tfrecords_tools.build_*` binaries: the contract on bad input (one
`error:` line naming the file, non-zero exit, no traceback, no shard left) and flags.

Every bad-input run passes all of its binary's flags through `main` into the library
call (a misspelled flag or argument would fail it), and answers before TensorFlow is
imported (~1 s). A good run imports TensorFlow (~6 s of CPU), so only the two binaries
with the most flags of their own run end to end; the library tests cover the rest.
One module fixture runs them all, four at a time.
"""
import concurrent.futures
import json
import os

import numpy as np
import pytest

from deeplab_dpc import common
from tests import cli_utils
from tests.data import convert_fakes as fakes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cityscapes(tmp, broken):
    fakes.cityscapes(os.path.join(tmp, "cs"))
    bad = None
    if broken:
        bad = os.path.join(tmp, "cs", "gtFine", "train", "bochum",
                           "bochum_000000_000019_gtFine_labelIds.png")
        os.remove(bad)
    return "build_cityscapes_data", [f"--cityscapes_root={tmp}/cs", "--splits=train,val",
                                     "--num_shards=3"], bad


def _voc(tmp, broken):
    base, _ = fakes.voc(tmp)
    bad = None
    if broken:  # an RGB colour label where class ids belong
        bad = os.path.join(base, "SegmentationClass", "2007_000039.png")
        fakes.save(bad, fakes.rgb(*fakes.VOC_SHAPE, 0))
    return "build_voc2012_data", [
        f"--image_folder={base}/JPEGImages", f"--list_folder={base}/ImageSets/Segmentation",
        f"--semantic_segmentation_folder={base}/SegmentationClass", "--image_format=jpg",
        "--label_format=png", f"--train_aug_label_folder={base}/SegmentationClassAug"], bad


def _ade20k(tmp, broken):
    base, _ = fakes.ade20k(tmp)
    bad = None
    if broken:  # truncated: the header reads, the pixels do not
        bad = os.path.join(base, "images", "training", "ADE_train_00000003.jpg")
        with open(bad, "r+b") as f:
            f.truncate(os.path.getsize(bad) - 20)
    return "build_ade20k_data", [
        f"--{split}_image{kind}_folder={base}/{top}/{sub}"
        for split, sub in (("train", "training"), ("val", "validation"))
        for kind, top in (("", "images"), ("_label", "annotations"))], bad


def _person_part(tmp, broken):
    fakes.person_part(tmp)
    bad = None
    if broken:
        bad = fakes.save(os.path.join(tmp, "SegmentationPart", "2008_000026.png"),
                         np.zeros((16, 17), np.uint8))
    return "build_person_part_data", [
        f"--image_folder={tmp}/JPEGImages",
        f"--semantic_segmentation_folder={tmp}/SegmentationPart",
        f"--list_folder={tmp}/lists", "--num_shards=2"], bad


def _folder(tmp, broken):
    fakes.folder(tmp)
    label_map = os.path.join(tmp, "map.json")
    with open(label_map, "w") as f:
        json.dump(fakes.FOLDER_LABEL_MAP, f)
    args = [f"--image_folder={tmp}/images", f"--semantic_segmentation_folder={tmp}/labels",
            "--num_classes=3", "--dataset_name=toy", "--class_names=bg,thing,edge",
            "--split=all"]
    bad = None
    if broken:  # no label map: valid ids except 5 in one file
        for i in range(3):
            fakes.save(os.path.join(tmp, "labels", f"img{i}.png"),
                       np.full((12, 10), 5 if i == 1 else 2, np.uint8))
        bad = os.path.join(tmp, "labels", "img1.png")
    else:
        args.append(f"--label_map={label_map}")
    return "build_folder_data", args, bad


CASES = {"cityscapes": _cityscapes, "voc2012": _voc, "ade20k": _ade20k,
         "person_part": _person_part, "folder": _folder}
END_TO_END = {"voc2012": {"train": 3, "val": 2, "trainval": 5, "train_aug": 5},
              "folder": {"all": 3}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`{(dataset, broken): (completed process, output_dir, bad file)}`, run concurrently."""
    jobs = {}
    for name, make in CASES.items():
        for broken in (False, True) if name in END_TO_END else (True,):
            tmp = str(tmp_path_factory.mktemp(f"{name}_{'bad' if broken else 'ok'}"))
            module, args, bad = make(tmp, broken)
            out = os.path.join(tmp, "out")
            args = [*args, f"--output_dir={out}", "--num_workers=2"]
            jobs[name, broken] = (f"tfrecords_tools.{module}", args, out, bad)

    def run(job):
        return cli_utils.run_binary(job[0], *job[1], timeout=180, cwd=ROOT)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        done = dict(zip(jobs, pool.map(run, jobs.values())))
    return {key: (done[key], out, bad) for key, (_, _, out, bad) in jobs.items()}


@pytest.mark.parametrize("name", END_TO_END)
def test_binary_converts(runs, name):
    proc, out, _ = runs[name, False]
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(out, common.DATASET_INFO_FILE)) as f:
        assert json.load(f)["splits"] == END_TO_END[name]
    shards = set().union(*(fakes.shard_names(s, 4) for s in END_TO_END[name]))
    assert set(os.listdir(out)) == shards | {common.DATASET_INFO_FILE}


@pytest.mark.parametrize("name, problem", [
    ("cityscapes", "missing label"), ("voc2012", "channels"), ("ade20k", "truncated"),
    ("person_part", "differs"), ("folder", "[5]")])
def test_binary_rejects_bad_input(runs, name, problem):
    proc, out, bad = runs[name, True]
    line = cli_utils.assert_one_line_error(proc, bad, problem)
    if name == "voc2012":
        assert "SegmentationClassRaw" in line
    # Refused before anything is written: not even the output folder exists.
    assert not os.path.exists(out), os.listdir(out)
