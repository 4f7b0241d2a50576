"""The feature cache's files, and `FeatureCache`, which reads them.

A cache directory holds:
  cache_config.json   the settings (backbone, source weights and their hash,
                      dataset, image scale, flip, dtype, splits, hold-out): written
                      first, so a rerun with other settings is refused before any
                      shard is touched, and a killed run resumes with the same ones;
  {split}-{i:05d}-of-{n:05d}.tfrecord
                      one record per image (keys below), in the split's file order;
  manifest.json       the settings plus, per split, its shards (with their sha256),
                      image count and feature shape, and `content_hash`, a sha256 of
                      settings and shard hashes: written last, so a cache is
                      complete exactly when it has one. Studies record the hash.
"""
import hashlib
import json
import os

import numpy as np

from deeplab_dpc import files
from deeplab_dpc.common import SHARD_PATTERN  # noqa: F401 (the shard names)
from deeplab_dpc.errors import InputError

FORMAT_VERSION = 1
CONFIG_FILE = "cache_config.json"
MANIFEST_FILE = "manifest.json"
DTYPES = ("float16", "float32")

# Record keys. Features are `tf.io.serialize_tensor` bytes of [h, w, c] in the cache
# dtype; labels a PNG at the scaled image's resolution.
FILENAME_KEY = "image/filename"
FEATURE_KEY = "feature/encoded"
FLIPPED_FEATURE_KEY = "feature/flipped/encoded"  # the flipped image's features
FEATURE_SHAPE_KEY = "feature/shape"
LABEL_KEY = "label/encoded"




def canonical(settings):
    """Settings as they read back from JSON (tuples become lists), for comparing."""
    return json.loads(json.dumps(settings))


def settings_difference(old, new, prefix=""):
    """The first field (dotted path) in which two settings dicts differ, or None."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = settings_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key}"
    return None


def content_hash(settings, splits):
    """sha256 of the settings and every shard's sha256: equal for equal caches."""
    text = json.dumps({"settings": settings, "shards": {
        s: part["shard_sha256"] for s, part in sorted(splits.items())}}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path):
    from deeplab_dpc.tf_import import import_tensorflow

    digest = hashlib.sha256()
    with import_tensorflow().io.gfile.GFile(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


def _require(manifest, path, field, check, expected):
    value = manifest
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            raise InputError(f"{path}: field {field} is missing")
        value = value[part]
    if not check(value):
        raise InputError(f"{path}: field {field}: expected {expected}, got "
                         f"{json.dumps(value)[:60]}")
    return value


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class FeatureCache:
    """A complete feature cache directory (local or any tf.io.gfile path)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        manifest_path = os.path.join(self.path, MANIFEST_FILE)
        from deeplab_dpc.tf_import import import_tensorflow

        gfile = import_tensorflow().io.gfile
        if not gfile.exists(manifest_path):
            if not gfile.isdir(self.path):
                raise InputError(f"feature_cache_dir {self.path} does not exist",
                                 param="feature_cache_dir")
            if gfile.exists(os.path.join(self.path, CONFIG_FILE)):
                raise InputError(f"feature_cache_dir {self.path} is incomplete (no "
                                 f"{MANIFEST_FILE}); rerun cache_features to finish it",
                                 param="feature_cache_dir")
            raise InputError(f"feature_cache_dir {self.path} is not a feature cache: no "
                             f"{MANIFEST_FILE}", param="feature_cache_dir")
        m = files.read_json(manifest_path, MANIFEST_FILE)
        if not isinstance(m, dict):
            raise InputError(f"{manifest_path}: expected a JSON object")
        p = manifest_path
        version = _require(m, p, "settings.format_version", _is_int, "an integer")
        if version > FORMAT_VERSION:
            raise InputError(f"{p}: format version {version} was written by newer code "
                             f"(this reads up to {FORMAT_VERSION}); upgrade deeplab-dpc")
        self.settings = m["settings"]
        self.dtype = _require(m, p, "settings.dtype", lambda v: v in DTYPES, "float16 or float32")
        self.output_stride = _require(m, p, "settings.backbone.output_stride", _is_int,
                                      "an integer")
        self.feature_channels = _require(m, p, "settings.backbone.feature_channels", _is_int,
                                         "an integer")
        self.num_classes = _require(m, p, "settings.dataset.num_classes",
                                    lambda v: _is_int(v) and v >= 1, "an integer >= 1")
        self.ignore_label = _require(m, p, "settings.dataset.ignore_label", _is_int,
                                     "an integer")
        self.image_scale = _require(m, p, "settings.image_scale",
                                    lambda v: isinstance(v, (int, float)) and v > 0,
                                    "a positive number")
        self.flipped = bool(self.settings.get("cache_flip"))
        self.splits = _require(m, p, "splits", lambda v: isinstance(v, dict) and v,
                               "an object {split: ...}")
        for split, part in self.splits.items():
            _require(m, p, f"splits.{split}.count", lambda v: _is_int(v) and v >= 1,
                     "an integer >= 1")
            _require(m, p, f"splits.{split}.shards", lambda v: isinstance(v, list) and v and all(
                isinstance(n, str) and "/" not in n for n in v), "a list of shard names")
        self.content_hash = _require(m, p, "content_hash", lambda v: isinstance(v, str) and v,
                                     "a hash")
        self.manifest = m

    @property
    def class_names(self):
        return tuple(self.settings["dataset"].get("class_names") or ())

    def count(self, split):
        return self._split(split)["count"]

    def feature_shape(self, split):
        """[h, w, c] of the split's features when every image has one, else None."""
        shape = self._split(split).get("feature_shape")
        return tuple(shape) if shape else None

    def label_shape(self, split):
        shape = self._split(split).get("label_shape")
        return tuple(shape) if shape else None

    def _split(self, split):
        if split not in self.splits:
            raise InputError(f"feature cache {self.path} has no split {split!r} (it has "
                             f"{', '.join(sorted(self.splits))})")
        return self.splits[split]

    def shard_paths(self, split):
        from deeplab_dpc.tf_import import import_tensorflow

        gfile = import_tensorflow().io.gfile
        part = self._split(split)
        paths = [os.path.join(self.path, n) for n in part["shards"]]
        sizes = part.get("shard_bytes") or [None] * len(paths)
        for path, size in zip(paths, sizes):
            if not gfile.exists(path):
                raise InputError(f"{path}: shard listed in {MANIFEST_FILE} is missing; rerun "
                                 "cache_features", param="feature_cache_dir")
            # A cheap check that catches truncation before any training (a full hash of
            # a Cityscapes cache would cost minutes at every start).
            if size is not None and gfile.stat(path).length != size:
                raise InputError(f"{path}: {gfile.stat(path).length} bytes, but {MANIFEST_FILE} "
                                 f"says {size}; rerun cache_features into a new "
                                 "feature_cache_dir", param="feature_cache_dir")
        return paths

    def dataset(self, split, stored_dtype=False):
        """tf.data of the split's images in order: {"features": float32 [h, w, c],
        "features_flipped" (with cache_flip), "label": int32 [H, W, 1], "filename"}.
        `stored_dtype`: features in the cache's dtype (half the memory when cached)."""
        import tensorflow as tf

        spec = {FILENAME_KEY: tf.io.FixedLenFeature((), tf.string),
                FEATURE_KEY: tf.io.FixedLenFeature((), tf.string),
                FEATURE_SHAPE_KEY: tf.io.FixedLenFeature((3,), tf.int64),
                LABEL_KEY: tf.io.FixedLenFeature((), tf.string)}
        if self.flipped:
            spec[FLIPPED_FEATURE_KEY] = tf.io.FixedLenFeature((), tf.string)
        dtype = tf.as_dtype(self.dtype)
        channels = self.feature_channels

        def parse(record):
            f = tf.io.parse_single_example(record, spec)

            def features(key):
                x = tf.reshape(tf.io.parse_tensor(f[key], dtype), f[FEATURE_SHAPE_KEY])
                x = x if stored_dtype else tf.cast(x, tf.float32)
                return tf.ensure_shape(x, [None, None, channels])

            out = {"features": features(FEATURE_KEY),
                   "label": tf.cast(tf.io.decode_png(f[LABEL_KEY], channels=1), tf.int32),
                   "filename": f[FILENAME_KEY]}
            if self.flipped:
                out["features_flipped"] = features(FLIPPED_FEATURE_KEY)
            return out

        return tf.data.TFRecordDataset(self.shard_paths(split)).map(
            parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def arrays(self, split):
        """The split in memory: (features [N, h, w, c] float32, labels [N, H, W, 1] int32),
        for splits whose images share one size."""
        feats, labels = [], []
        for example in self.dataset(split):
            feats.append(example["features"].numpy())
            labels.append(example["label"].numpy())
        return np.stack(feats), np.stack(labels)
