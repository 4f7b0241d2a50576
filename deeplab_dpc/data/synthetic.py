"""Procedural street-and-harbour scenes: the project's own dataset.

Every binary defaults to it, so a first command trains and evaluates a real
model on a fresh machine with no download. It is built so that the DPC's
choices matter (see BUILD_NOTES.md, "The synthetic dataset"):

- Lanes are horizontal bands of `road` or `water` whose local texture is drawn
  from ONE distribution: a patch of band does not say which it is. Only a
  gate at each end of the band does (red-and-white chevrons on a road,
  yellow-and-black bands on water), up to half the image width away.
- `car` and `boat` are the same vehicle drawn on a road or on water: telling
  them apart needs that same far, horizontal context, so heads with long,
  short-and-wide receptive fields (large r_w) should win.
- Vehicles scale with their lane (about 30 to 250 px wide at 513x1025), towers
  and poles are tall and thin, low blocks and vehicles short and wide.
- Textures are noisy, so no single pixel's colour decides its class, and a
  thin ring around each vehicle plus the odd occluder are labelled 255.

A scene is a pure function of (seed, split, index).
"""
import dataclasses
import io
import os

import numpy as np
from PIL import Image

from deeplab_dpc import files
from deeplab_dpc.data import datasets

CLASSES = ("sky", "building", "sidewalk", "road", "water", "pole", "car", "boat")
SKY, BUILDING, SIDEWALK, ROAD, WATER, POLE, CAR, BOAT = range(len(CLASSES))
COLORMAP = ((70, 130, 180), (70, 70, 70), (244, 35, 232), (128, 64, 128), (0, 90, 200),
            (153, 153, 153), (0, 0, 142), (250, 170, 30))
IGNORE_LABEL = 255
NAME = "synthetic"
# Bumped whenever scenes change: the binaries' default dataset directory is per version.
GENERATOR_VERSION = 2
DEFAULT_SIZE = (513, 1025)  # an output-stride-16 feature map of 33x65
# Scenes per split. `minival` is drawn from the training distribution but held out
# of `train`, for the architecture search to rank candidates without touching val.
DEFAULT_SPLITS = {"train": 300, "minival": 50, "val": 100, "test": 50}
MARKER_WIDTH = 0.05  # of the image width: 1.6 feature cells at half size, output stride 16
_SPLIT_IDS = {"train": 0, "minival": 1, "val": 2, "test": 3}

INFO = datasets.register(datasets.DatasetInfo(
    name=NAME, num_classes=len(CLASSES), ignore_label=IGNORE_LABEL,
    class_names=CLASSES, colormap=COLORMAP, splits=dict(DEFAULT_SPLITS)))


def scene_rng(seed, split, index):
    return np.random.default_rng([seed, _SPLIT_IDS.get(split, 9), index])


class _Canvas:
    """An image and its label drawn together: every paint call sets both."""

    def __init__(self, height, width, rng):
        self.h, self.w, self.rng = height, width, rng
        self.image = np.zeros((height, width, 3), np.float32)
        self.label = np.zeros((height, width), np.uint8)
        self.rows = np.arange(height)[:, None]
        self.cols = np.arange(width)[None, :]

    def texture(self, shape, base, noise, streaks=0.0):
        """`base` colour plus pixel noise and optional horizontal streaks."""
        t = self.rng.standard_normal(shape + (3,), dtype=np.float32)
        t *= noise
        t += np.asarray(base, np.float32)
        if streaks:
            t += self.rng.normal(0, streaks, (shape[0], 1, 1)).astype(np.float32)
        return t

    def paint(self, mask, top, left, cls, colour=None):
        """Sets `cls` and `colour` (array, [3], or None: label only) where `mask` is set."""
        h, w = mask.shape
        t0, l0 = max(top, 0), max(left, 0)
        t1, l1 = min(top + h, self.h), min(left + w, self.w)
        if t0 >= t1 or l0 >= l1:
            return
        m = mask[t0 - top:t1 - top, l0 - left:l1 - left]
        if colour is not None:
            colour = np.asarray(colour, np.float32)
            if colour.ndim == 3:
                colour = colour[t0 - top:t1 - top, l0 - left:l1 - left]
            region = self.image[t0:t1, l0:l1]
            region[m] = np.broadcast_to(colour, region.shape)[m]
        self.label[t0:t1, l0:l1][m] = cls


def _box(h, w):
    return np.ones((max(h, 1), max(w, 1)), bool)


def _vehicle_mask(h, w):
    """A body with rounded bottom corners and a cabin on top: car and boat alike."""
    y, x = np.ogrid[:h, :w]
    body_top = h * 2 // 5
    r = max(2, (h - body_top) // 3)
    # Distance to the nearest point of the body shrunk by r: rounds the corners.
    cx, cy = np.clip(x, r, w - 1 - r), np.minimum(y, h - 1 - r)
    body = (y >= body_top) & ((x - cx) ** 2 + (y - cy) ** 2 <= r * r)
    cabin = (y < body_top) & (x >= w // 4) & (x < w - w // 4)
    return body | cabin


def _sky_and_buildings(c, horizon):
    rng = c.rng
    top = rng.uniform(150, 190, 3) * np.array([0.6, 0.8, 1.0])
    sky = c.texture((horizon, c.w), top, 8) + np.linspace(0, 40, horizon)[:, None, None]
    c.paint(_box(horizon, c.w), 0, 0, SKY, sky)
    for _ in range(rng.integers(3, 9)):
        tall = rng.random() < 0.5
        bw = int(c.w * (rng.uniform(0.02, 0.06) if tall else rng.uniform(0.08, 0.25)))
        bh = int(c.h * (rng.uniform(0.15, 0.3) if tall else rng.uniform(0.04, 0.12)))
        bh = min(bh, horizon)
        left = int(rng.integers(-bw // 2, c.w - bw // 2))
        colour = c.texture((bh, bw), rng.uniform(60, 140, 3), 12)
        win = max(3, bw // 12)
        windows = ((np.arange(bh)[:, None] // win) % 2 == 1) & ((np.arange(bw)[None] // win) % 2 == 1)
        colour[windows] *= 0.6
        c.paint(_box(bh, bw), horizon - bh, left, BUILDING, colour)


def _lamp_posts(c, horizon, lanes):
    """Grey poles standing on the sidewalk, never in a lane: they say nothing about
    lanes. Tall and thin: one feature cell wide at half size and output stride 16,
    since anything narrower is never predicted without a decoder."""
    rng = c.rng
    pw = max(4, c.w // 32)
    in_lane = np.zeros(c.h, bool)
    for t, hh, _ in lanes:
        in_lane[max(t - 2, 0):t + hh + 3] = True
    free = np.flatnonzero(~in_lane[horizon + 5:]) + horizon + 5
    for _ in range(rng.integers(2, 7) if len(free) else 0):
        base = int(rng.choice(free))
        above = max([t + hh + 2 for t, hh, _ in lanes if t + hh < base], default=0)
        ph = min(int(c.h * rng.uniform(0.15, 0.35)), base - above)
        if ph < 2 * pw:
            continue
        x = int(rng.integers(0, c.w - pw))
        c.paint(_box(ph, pw), base - ph, x, POLE, c.texture((ph, pw), (120, 120, 125), 8))


def _marker(c, kind, x, top, height):
    """The lane's identity: a gate across the lane at one end, red-and-white chevrons
    on a road, yellow-and-black bands on water. It is labelled as its lane, so the
    cue itself is supervised; everywhere else the lane must be decided from afar."""
    mw = max(4, int(c.w * MARKER_WIDTH))
    y, xx = np.ogrid[:height, :mw]
    stripe = max(2, height // 5)
    if kind == ROAD:
        colours = np.array([(210, 30, 30), (235, 235, 235)], np.float32)
        pattern = ((xx + y) // stripe) % 2
    else:
        colours = np.array([(230, 200, 20), (25, 25, 25)], np.float32)
        pattern = (y // stripe) % 2 + 0 * xx
    gate = colours[pattern] + c.texture((height, mw), 0, 8)
    c.paint(_box(height, mw), top, x, kind, gate)


def _lanes(c, horizon):
    """2-3 bands spread over the ground, each road or water at random."""
    rng = c.rng
    heights = (c.h * rng.uniform(0.07, 0.16, rng.integers(2, 4))).astype(int)
    free = c.h - horizon - heights.sum() - 8
    gaps = (free * rng.dirichlet(np.ones(len(heights) + 1))).astype(int)
    lanes, y = [], horizon + 4
    for hh, gap in zip(heights, gaps):
        y += gap
        lanes.append((y, int(hh), ROAD if rng.random() < 0.5 else WATER))
        y += hh
    return lanes


def _vehicle_colour(rng):
    """A bright, saturated paint whose hue is never a gate's red or yellow."""
    hue = rng.uniform(100, 320) / 60  # green through blue to magenta, in sextants
    value, saturation = rng.uniform(160, 240), rng.uniform(0.4, 0.8)
    k = (np.array([5, 3, 1]) + hue) % 6  # the standard HSV -> RGB formula
    return value * (1 - saturation * np.clip(np.minimum(k, 4 - k), 0, 1))


def _vehicles(c, top, height, kind, ignore):
    rng = c.rng
    cls = CAR if kind == ROAD else BOAT
    margin = int(c.w * (MARKER_WIDTH + 0.04))
    for _ in range(rng.integers(1, 5)):
        vh = int(height * rng.uniform(0.45, 0.85))
        vw = int(vh * rng.uniform(1.6, 3.6))
        if vw >= c.w - 2 * margin:
            continue
        left = int(rng.integers(margin, c.w - margin - vw))
        vtop = top + height - vh - int(rng.integers(0, max(1, height - vh)))
        mask = _vehicle_mask(vh, vw)
        body = c.texture((vh, vw), _vehicle_colour(rng), 14)
        body[: vh * 2 // 5][:, vw // 3: vw - vw // 3] = (40, 50, 60)  # windows
        # The ring around the silhouette is ambiguous at any resolution: ignore it.
        ring = np.pad(mask, 2)
        grown = ring.copy()
        for dy, dx in ((-2, 0), (2, 0), (0, -2), (0, 2)):
            grown |= np.roll(ring, (dy, dx), (0, 1))
        ignore.append((grown & ~ring, vtop - 2, left - 2))
        c.paint(mask, vtop, left, cls, body)


def generate_scene(rng, height=DEFAULT_SIZE[0], width=DEFAULT_SIZE[1]):
    """One scene: (uint8 RGB image [h, w, 3], uint8 label [h, w])."""
    c = _Canvas(height, width, rng)
    horizon = int(height * rng.uniform(0.22, 0.36))
    _sky_and_buildings(c, horizon)
    ground = c.texture((height - horizon, width), rng.uniform(110, 170, 3), 18, streaks=4)
    c.paint(_box(height - horizon, width), horizon, 0, SIDEWALK, ground)
    lanes = _lanes(c, horizon)
    # Road and water share one texture distribution: the patch itself is no clue.
    for top, hh, kind in lanes:
        grey = rng.uniform(70, 120)
        tint = rng.uniform(-15, 15, 3)
        c.paint(_box(hh, width), top, 0, kind,
                c.texture((hh, width), grey + tint, 16, streaks=6))
    _lamp_posts(c, horizon, lanes)
    ignore = []
    for top, hh, kind in lanes:
        mw = max(4, int(width * MARKER_WIDTH))
        for edge in (int(width * rng.uniform(0.0, 0.02)),
                     width - mw - int(width * rng.uniform(0.0, 0.02))):
            _marker(c, kind, edge, top, hh)
        _vehicles(c, top, hh, kind, ignore)
    for ring, top, left in ignore:
        c.paint(ring, top, left, IGNORE_LABEL)
    if rng.random() < 0.3:  # an occluder nobody can label
        oh, ow = int(height * rng.uniform(0.05, 0.12)), int(width * rng.uniform(0.03, 0.08))
        c.paint(_box(oh, ow), int(rng.integers(0, height - oh)), int(rng.integers(0, width - ow)),
                IGNORE_LABEL, c.texture((oh, ow), rng.uniform(0, 255, 3), 60))
    gain, bias = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
    image = np.clip(c.image * gain + bias, 0, 255)
    return image.astype(np.uint8), c.label


# ----------------------------------------------------------------------------- files


def scene_name(split, index):
    return f"{split}_{index:05d}"


def _write_scene(job):
    """Writes one scene's JPEG image and PNG label; skips scenes already written."""
    root, seed, split, index, size = job
    name = scene_name(split, index)
    image_path = os.path.join(root, "images", name + ".jpg")
    label_path = os.path.join(root, "labels", name + ".png")
    if os.path.exists(image_path) and os.path.exists(label_path):
        return name  # a resumed run: scenes are pure functions of (seed, split, index)
    image, label = generate_scene(scene_rng(seed, split, index), *size)
    for array, path, fmt, kwargs in ((image, image_path, "JPEG", {"quality": 92}),
                                     (label, label_path, "PNG", {})):
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format=fmt, **kwargs)
        files.write_atomically(path, buf.getvalue())
    return name


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """What defines a synthetic dataset: same config, same bytes."""

    height: int = DEFAULT_SIZE[0]
    width: int = DEFAULT_SIZE[1]
    seed: int = 0
    splits: tuple = tuple(DEFAULT_SPLITS.items())  # (split, number of scenes)
    num_shards: int = 4

    def __post_init__(self):
        from deeplab_dpc.errors import InputError

        if min(self.height, self.width) < 64:
            raise InputError(f"synthetic scenes need at least 64x64 pixels, got "
                             f"{self.height}x{self.width}")
        for split, n in self.splits:
            if split not in _SPLIT_IDS or n < 1:
                raise InputError(f"synthetic split {split!r}: expected one of "
                                 f"{', '.join(_SPLIT_IDS)} with at least one scene")


CONFIG_FILE = "synthetic_config.json"


def _claim(output_dir, config):
    """Records which generator and config own `output_dir`, or refuses a folder that
    holds other scenes: resuming must never mix two versions of the dataset."""
    import json

    from deeplab_dpc.errors import InputError

    wanted = {"generator_version": GENERATOR_VERSION, **dataclasses.asdict(config)}
    wanted["splits"] = [list(s) for s in config.splits]
    path = os.path.join(output_dir, CONFIG_FILE)
    if os.path.exists(path):
        found = files.read_json(path, CONFIG_FILE)
        if found != wanted:
            raise InputError(f"{output_dir} holds synthetic scenes of another generator "
                             f"version or config ({path}); use a new directory")
        return
    images = os.path.join(output_dir, "images")
    if os.path.isdir(images) and os.listdir(images):
        raise InputError(f"{output_dir} holds scenes without {CONFIG_FILE} (an older "
                         "generator?); use a new directory")
    os.makedirs(output_dir, exist_ok=True)
    files.write_atomically(path, json.dumps(wanted, indent=2).encode())


def write_dataset(output_dir, config=SyntheticConfig(), num_workers=0, progress=True):
    """Writes image/label folders, split lists, then DeepLab TFRecords via the generic
    folder converter (so that path is exercised on every fresh machine).

    Layout: `images/*.jpg`, `labels/*.png`, `lists/{split}.txt`, and in `output_dir`
    itself `synthetic_config.json` (written first: generator version and config),
    the shards and `dataset_info.json`, which is written last: its presence means
    the dataset is complete. A killed run resumes where it stopped; a folder written
    by another generator version or config is refused.
    """
    import concurrent.futures
    import multiprocessing

    from deeplab_dpc.data.convert import sources
    from deeplab_dpc.progress import Progress

    files.check_output_dir(output_dir, "output_dir")
    _claim(output_dir, config)
    for sub in ("images", "labels", "lists"):
        os.makedirs(os.path.join(output_dir, sub), exist_ok=True)
        files.remove_stale_temporaries(os.path.join(output_dir, sub))
    size = (config.height, config.width)
    jobs = [(output_dir, config.seed, split, i, size)
            for split, n in config.splits for i in range(n)]
    workers = num_workers or os.cpu_count() or 1
    # spawn, not fork: the caller may already run TensorFlow threads.
    with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=files.die_with_parent, initargs=(os.getpid(),)) as pool:
        with Progress(len(jobs), "synthetic scenes", unit="scenes", enabled=progress) as bar:
            for _ in pool.map(_write_scene, jobs, chunksize=4):
                bar.update()
    for split, n in config.splits:
        text = "".join(scene_name(split, i) + "\n" for i in range(n))
        files.write_atomically(os.path.join(output_dir, "lists", split + ".txt"), text.encode())
    sources.convert_folder(
        image_folder=os.path.join(output_dir, "images"),
        semantic_segmentation_folder=os.path.join(output_dir, "labels"),
        output_dir=output_dir, num_classes=len(CLASSES), dataset_name=NAME,
        ignore_label=IGNORE_LABEL, class_names=CLASSES,
        list_folder=os.path.join(output_dir, "lists"), num_shards=config.num_shards,
        num_workers=num_workers, progress=progress)
    # The generic converter knows no colormap: complete the info with ours.
    written = datasets.read_dataset_info(output_dir)
    info = dataclasses.replace(INFO, splits=dict(written.splits), shards=written.shards)
    datasets.write_dataset_info(output_dir, info)
    return output_dir


def default_dataset_dir():
    """Where binaries keep the synthetic set when no --dataset_dir is given."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(cache, "deeplab_dpc", f"synthetic_v{GENERATOR_VERSION}")


def ensure_dataset(dataset_dir, config=SyntheticConfig()):
    """The synthetic dataset in `dataset_dir`, generated first if it is not complete."""
    if datasets.read_dataset_info(dataset_dir) is None:
        print(f"Generating the synthetic dataset in {dataset_dir} "
              f"({sum(n for _, n in config.splits)} scenes of "
              f"{config.height}x{config.width}) ...", flush=True)
        write_dataset(dataset_dir, config)
    return dataset_dir
