"""The synthetic dataset: deterministic, and built so that context decides classes."""
import dataclasses
import hashlib
import os

import numpy as np
import pytest
from scipy import ndimage

from deeplab_dpc.data import datasets, synthetic
from deeplab_dpc.data import input_pipeline as ip
from deeplab_dpc.errors import InputError
from tests.cli_utils import assert_one_line_error, run_binary

SIZE = (257, 513)


def _scenes(n, split="train", size=SIZE):
    return [synthetic.generate_scene(synthetic.scene_rng(0, split, i), *size) for i in range(n)]


def test_scenes_are_pure_functions_of_seed_split_and_index():
    a = synthetic.generate_scene(synthetic.scene_rng(0, "train", 3), *SIZE)
    b = synthetic.generate_scene(synthetic.scene_rng(0, "train", 3), *SIZE)
    c = synthetic.generate_scene(synthetic.scene_rng(0, "val", 3), *SIZE)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_every_class_and_the_ignore_label_appear():
    labels = np.stack([label for _, label in _scenes(12)])
    assert set(np.unique(labels)) == set(range(len(synthetic.CLASSES))) | {255}


def test_poles_stand_outside_lanes_and_are_tall_and_thin():
    """A pole in a lane would be a cue in the middle of it."""
    shapes = []
    for _, label in _scenes(20):
        lanes = np.isin(label, (synthetic.ROAD, synthetic.WATER)).mean(axis=1) > 0.5
        assert not (label[lanes] == synthetic.POLE).any()
        blobs, _ = ndimage.label(label == synthetic.POLE)
        shapes += [(box[0].stop - box[0].start, box[1].stop - box[1].start)
                   for box in ndimage.find_objects(blobs)]
    heights, widths = np.array(shapes).T
    assert len(shapes) >= 20 and np.median(heights / widths) >= 2


def _lane_rows(label, cls):
    """Rows whose middle third is mostly `cls`: a lane's interior."""
    mid = label[:, label.shape[1] // 3: 2 * label.shape[1] // 3]
    return np.flatnonzero((mid == cls).mean(axis=1) > 0.5)


def test_road_and_water_look_alike_up_close():
    """Lane pixels of both classes come from one colour distribution (away from the
    gates at the ends, which are labelled as their lane and differ on purpose)."""
    stats = {synthetic.ROAD: [], synthetic.WATER: []}
    for image, label in _scenes(40):
        w = label.shape[1]
        image, label = image[:, w // 10: w - w // 10], label[:, w // 10: w - w // 10]
        for cls in stats:
            pixels = image[label == cls].astype(float)
            if len(pixels):
                stats[cls].append(pixels.mean(axis=0))
    road, water = (np.array(stats[c]) for c in (synthetic.ROAD, synthetic.WATER))
    assert len(road) > 10 and len(water) > 10
    # Per-scene lane means differ by less than their spread: no colour cue.
    gap = np.abs(road.mean(0) - water.mean(0))
    spread = np.sqrt((road.var(0) + water.var(0)) / 2)
    assert (gap < 0.5 * spread).all(), (gap, spread)


def test_cars_and_boats_are_the_same_objects_on_different_lanes():
    sizes = {synthetic.CAR: [], synthetic.BOAT: []}
    colours = {synthetic.CAR: [], synthetic.BOAT: []}
    for image, label in _scenes(40):
        for cls in sizes:
            blobs, n = ndimage.label(label == cls)
            for box in ndimage.find_objects(blobs):
                sizes[cls].append(box[1].stop - box[1].start)
            if n:
                colours[cls].append(image[label == cls].mean(0))
    for cls in sizes:
        widths = np.array(sizes[cls])
        # Objects of one class vary by far more than 8x in size within a split.
        assert widths.max() >= 8 * max(widths.min(), 1), (cls, widths.min(), widths.max())
    cars, boats = np.array(colours[synthetic.CAR]), np.array(colours[synthetic.BOAT])
    assert (np.abs(cars.mean(0) - boats.mean(0)) < 0.5 * cars.std(0)).all()
    assert abs(np.median(sizes[synthetic.CAR]) - np.median(sizes[synthetic.BOAT])) < 0.3 * \
        np.median(sizes[synthetic.CAR])


def _gate_columns(image, label, rows, cls):
    """Columns of lane `cls` (in `rows`) that are largely strongly coloured: its gates.
    Lane texture is grey with noise, so a channel spread above 110 in over a fifth of
    a column's lane pixels marks a gate's red or yellow stripes."""
    pixels = image[rows].astype(int)
    saturated = (pixels.max(-1) - pixels.min(-1)) > 110
    return np.flatnonzero((saturated & (label[rows] == cls)).mean(axis=0) > 0.2)


def test_the_deciding_context_is_far_away():
    """Each lane's identity shows only at its two ends: a red gate on a road, a
    yellow one on water, labelled as the lane itself."""
    far = []
    for image, label in _scenes(20):
        for cls in (synthetic.ROAD, synthetic.WATER):
            rows = _lane_rows(label, cls)
            if not len(rows):
                continue
            w = label.shape[1]
            gates = _gate_columns(image, label, rows, cls)
            assert gates.min() < 0.03 * w and gates.max() > 0.97 * w
            # Nothing in the middle of a lane says what it is.
            assert not ((gates > 0.08 * w) & (gates < 0.92 * w)).any()
            # Red (low green) on roads, yellow (high green) on water.
            pixels = image[rows][:, gates].reshape(-1, 3).astype(int)
            pixels = pixels[pixels.max(-1) - pixels.min(-1) > 110]
            assert (pixels[:, 1].mean() < 100) == (cls == synthetic.ROAD)
            band = label[rows]
            vehicles = np.flatnonzero(np.isin(band, (synthetic.CAR, synthetic.BOAT)).any(0))
            if len(vehicles):
                far.append(np.minimum(vehicles - gates.min(), gates.max() - vehicles).max())
    # Some vehicle pixels lie over a third of the width from the nearest gate.
    assert max(far) > SIZE[1] / 3


def _digest(folder):
    h = hashlib.sha1()
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not name.endswith(".json"):
            h.update(name.encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def test_write_dataset_resumes_and_feeds_the_pipeline(tmp_path):
    config = synthetic.SyntheticConfig(height=97, width=193, splits=(("train", 4), ("val", 2)),
                                       num_shards=2)
    root = str(tmp_path / "syn")
    synthetic.write_dataset(root, config, num_workers=1, progress=False)
    info = datasets.read_dataset_info(root)
    assert info.name == "synthetic" and info.splits == {"train": 4, "val": 2}
    assert info.colormap == synthetic.COLORMAP and info.class_names == synthetic.CLASSES
    first = _digest(root), _digest(os.path.join(root, "images"))
    # A killed run: an image and the info file are gone; the rerun restores both.
    os.remove(os.path.join(root, "images", "train_00002.jpg"))
    os.remove(os.path.join(root, "dataset_info.json"))
    assert synthetic.ensure_dataset(root, config) == root
    assert (_digest(root), _digest(os.path.join(root, "images"))) == first
    batch = next(iter(ip.build_dataset(os.path.join(root, "val-*"), is_training=False,
                                       batch_size=2)))
    assert batch["image"].shape == (2, 97, 193, 3)
    assert set(np.unique(batch["label"])) <= set(range(8)) | {255}


def test_a_folder_of_other_scenes_is_refused_not_mixed(tmp_path, monkeypatch):
    config = synthetic.SyntheticConfig(height=65, width=129, splits=(("train", 1),),
                                       num_shards=1)
    root = str(tmp_path / "syn")
    synthetic.write_dataset(root, config, num_workers=1, progress=False)
    with pytest.raises(InputError, match=f"{root} holds synthetic scenes of another"):
        synthetic.write_dataset(root, dataclasses.replace(config, seed=1), num_workers=1,
                                progress=False)
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    with pytest.raises(InputError, match="another generator version"):
        synthetic.write_dataset(root, config, num_workers=1, progress=False)
    os.remove(os.path.join(root, synthetic.CONFIG_FILE))  # as an older generator left it
    with pytest.raises(InputError, match="without synthetic_config.json"):
        synthetic.write_dataset(root, config, num_workers=1, progress=False)


def test_default_dir_is_per_generator_version(tmp_path, monkeypatch):
    """Binaries keep the set under the cache dir, one folder per generator version, so a
    new generator never resumes into an old one's folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert synthetic.default_dataset_dir() == str(tmp_path / "deeplab_dpc" / "synthetic_v2")
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", 3)
    assert synthetic.default_dataset_dir() == str(tmp_path / "deeplab_dpc" / "synthetic_v3")


def test_binary_refuses_bad_sizes(tmp_path):
    out = run_binary("tfrecords_tools.build_synthetic_data", f"--output_dir={tmp_path}/x",
                     "--image_size=10,10")
    assert_one_line_error(out, "64x64")
    assert not os.path.exists(tmp_path / "x")
