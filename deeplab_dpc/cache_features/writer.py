"""Writing a feature cache: a backbone in inference mode over whole images.

Each image is resized as eval resizes it (`(size - 1) * scale + 1`, bilinear,
align corners; the label nearest, align corners, to the same size), so a 513x1025
scene at scale 0.5 gives 257x513 and, at output stride 16, 17x33 features whose
cells sit exactly on label pixels 0, 16, 32, ... The output rule holds: shards are
renamed into place when complete, `manifest.json` comes last, and a rerun with the
same settings skips the finished shards (a killed run resumes where it stopped).
"""
import dataclasses
import hashlib
import os

import numpy as np

from deeplab_dpc import files
from deeplab_dpc.cache_features import format as fmt
from deeplab_dpc.errors import InputError
from deeplab_dpc.progress import Progress


@dataclasses.dataclass(frozen=True)
class CacheRequest:
    """What to cache, and where; validated before TensorFlow loads."""

    feature_cache_dir: str
    splits: tuple = ("train", "minival")
    image_scale: float = 1.0
    cache_flip: bool = False
    cache_dtype: str = "float16"
    holdout_from_train: int = 0  # images of `train_split` held out as `minival`
    train_split: str = "train"
    holdout_seed: int = 0
    images_per_shard: int = 100

    def __post_init__(self):
        files.check_output_dir(self.feature_cache_dir, "feature_cache_dir")
        splits = tuple(s for s in self.splits if s)
        if not splits:
            raise InputError("splits: name at least one split", param="splits")
        if len(set(splits)) != len(splits):
            raise InputError(f"splits: {','.join(splits)} names a split twice", param="splits")
        if self.holdout_from_train and "minival" not in splits:
            splits += ("minival",)
        object.__setattr__(self, "splits", splits)
        if not self.image_scale > 0:
            raise InputError(f"image_scale must be > 0, got {self.image_scale}",
                             param="image_scale")
        if self.cache_dtype not in fmt.DTYPES:
            raise InputError(f"cache_dtype {self.cache_dtype!r}: expected float16 or float32",
                             param="cache_dtype")
        if self.holdout_from_train < 0:
            raise InputError("holdout_from_train must be >= 0", param="holdout_from_train")
        if self.holdout_from_train and self.train_split not in splits:
            raise InputError(f"holdout_from_train holds out images of {self.train_split!r}, "
                             "which splits does not name", param=("holdout_from_train", "splits"))
        if self.images_per_shard < 1:
            raise InputError("images_per_shard must be >= 1", param="images_per_shard")


def weights_hash(variables):
    """sha256 over the variables' paths, shapes and float32 values (in order)."""
    digest = hashlib.sha256()
    for v in variables:
        value = np.asarray(v.numpy() if hasattr(v, "numpy") else v)
        digest.update(f"{getattr(v, 'path', '')}:{value.shape}:{value.dtype};".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def _check_folder(request, settings):
    """None for a fresh or resumable folder, the manifest for a complete one; InputError
    for a folder holding another cache (naming the first differing setting) or other
    files."""
    folder = request.feature_cache_dir
    config_path = os.path.join(folder, fmt.CONFIG_FILE)
    if os.path.exists(config_path) or ("://" in folder and files._gfile().exists(config_path)):
        old = files.read_json(config_path, fmt.CONFIG_FILE)
        field = fmt.settings_difference(old if isinstance(old, dict) else {}, settings)
        if field:
            raise InputError(
                f"feature_cache_dir {folder} holds a cache with other settings (differs in "
                f"{field}); use a new feature_cache_dir", param="feature_cache_dir")
        try:
            return fmt.FeatureCache(folder).manifest
        except InputError:
            return None
    if "://" not in folder and os.path.isdir(folder):
        others = [n for n in os.listdir(folder) if not files.is_temporary(n)]
        if others:
            raise InputError(f"feature_cache_dir {folder} is not empty and holds no feature "
                             f"cache (found {others[0]}); use a new folder",
                             param="feature_cache_dir")
    return None


def plan_splits(request, counts, has_minival):
    """{cached split: (source split, [source indices])} in file order, the hold-out
    drawn with `holdout_seed` from `train_split` and excluded from it."""
    plan = {}
    holdout = []
    if request.holdout_from_train:
        if has_minival:
            raise InputError("holdout_from_train: the dataset has a minival split; use it "
                             "(drop holdout_from_train)", param="holdout_from_train")
        n = counts[request.train_split]
        if request.holdout_from_train >= n:
            raise InputError(f"holdout_from_train {request.holdout_from_train} leaves no "
                             f"training image of the {n} in {request.train_split!r}",
                             param="holdout_from_train")
        rng = np.random.default_rng(request.holdout_seed)
        holdout = sorted(int(i) for i in rng.choice(n, request.holdout_from_train,
                                                    replace=False))
    for split in request.splits:
        if request.holdout_from_train and split == "minival":
            plan[split] = (request.train_split, holdout)
        elif split == request.train_split and holdout:
            held = set(holdout)
            plan[split] = (split, [i for i in range(counts[split]) if i not in held])
        else:
            plan[split] = (split, list(range(counts[split])))
    return plan


def write_cache(extractor, request, settings, dataset_dir, info, progress=True, log=print):
    """Runs `extractor` (float32 [1, H, W, 3] RGB in [0, 255] -> [1, h, w, c] features,
    inference mode) over the requested splits of the TFRecords in `dataset_dir` and
    writes the cache. `settings`: backbone and source (see `format`); the request's
    fields and the dataset are added here. Returns the manifest."""
    import tensorflow as tf

    from deeplab_dpc.data import input_pipeline as ip
    from deeplab_dpc.layers.ops import resize_bilinear
    from deeplab_dpc.predict.inference import scaled_size

    source_splits = sorted({request.train_split if (request.holdout_from_train and s == "minival")
                            else s for s in request.splits})
    paths, counts = {}, {}
    for split in source_splits:
        try:
            paths[split] = ip.list_files(os.path.join(dataset_dir, f"{split}-*"))
        except InputError:
            advice = ("; cache only the ones it has (splits=train) or hold out a minival "
                      "(holdout_from_train=N)" if split == "minival" else "")
            raise InputError(f"splits: dataset_dir {dataset_dir} has no {split!r} split (no "
                             f"{split}-* files){advice}",
                             param=("dataset_dir", "splits", "holdout_from_train")) from None
        try:
            counts[split] = sum(1 for _ in tf.data.TFRecordDataset(paths[split]))
        except tf.errors.OpError as e:
            raise InputError(f"{dataset_dir}: cannot read the {split!r} split: "
                             f"{' '.join(e.message.split())[:200]}") from None
        if not counts[split]:
            raise InputError(f"{dataset_dir}: the {split!r} split has no images")
    has_minival = bool(tf.io.gfile.glob(os.path.join(dataset_dir, "minival-*")))
    plan = plan_splits(request, counts, has_minival)

    settings = dict(settings, format_version=fmt.FORMAT_VERSION, dataset=dict(
        name=info.name, dataset_dir=os.fspath(dataset_dir), num_classes=info.num_classes,
        ignore_label=info.ignore_label, class_names=list(info.class_names)),
        image_scale=float(request.image_scale), cache_flip=bool(request.cache_flip),
        dtype=request.cache_dtype, splits=list(request.splits),
        holdout_from_train=request.holdout_from_train, train_split=request.train_split,
        holdout_seed=request.holdout_seed, images_per_shard=request.images_per_shard)
    settings = fmt.canonical(settings)
    complete = _check_folder(request, settings)
    if complete is not None:
        log(f"{request.feature_cache_dir} already holds this cache (content hash "
            f"{complete['content_hash'][:12]})")
        return complete
    folder = request.feature_cache_dir
    files.makedirs(folder)
    files.remove_stale_temporaries(folder)
    files.write_json_atomically(os.path.join(folder, fmt.CONFIG_FILE), settings)

    scale, dtype = float(request.image_scale), request.cache_dtype

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32),
                                  tf.TensorSpec([None, None, 1], tf.int32)])
    def compute(image, label):
        size = tf.shape(image)[:2]
        if scale != 1.0:
            size = scaled_size(size, scale)
            image = resize_bilinear(image[None], size)[0]
            label = tf.raw_ops.ResizeNearestNeighbor(
                images=label[None], size=size, align_corners=True, half_pixel_centers=False)[0]
        batch = image[None]
        if request.cache_flip:
            batch = tf.concat([batch, tf.reverse(batch, [2])], 0)
        features = tf.cast(extractor(batch), dtype)
        return features, label

    split_parts, todo = {}, {}  # todo: source split -> {index: (shard name, chunk)}
    for split, (source, indices) in plan.items():
        per = request.images_per_shard
        n = -(-len(indices) // per)
        names = [fmt.SHARD_PATTERN.format(split=split, index=i, num_shards=n) for i in range(n)]
        split_parts[split] = dict(count=len(indices), shards=names, source_split=source)
        for k, name in enumerate(names):
            chunk = indices[k * per:(k + 1) * per]
            if not tf.io.gfile.exists(os.path.join(folder, name)):
                todo.setdefault(source, {}).update({i: (name, chunk) for i in chunk})
    with Progress(sum(len(t) for t in todo.values()), "caching", enabled=progress) as bar:
        for source, wanted in todo.items():
            _write_source(tf, folder, paths[source], wanted, info, compute, bar)
    # Shapes and hashes from the shards themselves (finished in this run or before).
    for split, part in split_parts.items():
        part["shard_sha256"] = [fmt.file_sha256(os.path.join(folder, n)) for n in part["shards"]]
        part["shard_bytes"] = [tf.io.gfile.stat(os.path.join(folder, n)).length
                               for n in part["shards"]]
        cache_shapes = set(_shapes(tf, folder, part["shards"]))
        feature_shapes = {s[0] for s in cache_shapes}
        label_shapes = {s[1] for s in cache_shapes}
        part["feature_shape"] = list(next(iter(feature_shapes))) if len(feature_shapes) == 1 \
            else None
        part["label_shape"] = list(next(iter(label_shapes))) if len(label_shapes) == 1 else None
    manifest = dict(settings=settings, splits=split_parts,
                    content_hash=fmt.content_hash(settings, split_parts))
    if request.holdout_from_train:
        manifest["holdout_indices"] = plan["minival"][1]
    files.write_json_atomically(os.path.join(folder, fmt.MANIFEST_FILE), manifest)
    counts = ", ".join(f"{s}: {p['count']}" for s, p in split_parts.items())
    log(f"wrote {counts} images of features to {folder} (content hash "
        f"{manifest['content_hash'][:12]})")
    return manifest


def _record(tf, filename, features, label):
    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    feature = {
        fmt.FILENAME_KEY: b(filename),
        fmt.FEATURE_KEY: b(tf.io.serialize_tensor(features[0]).numpy()),
        fmt.FEATURE_SHAPE_KEY: tf.train.Feature(
            int64_list=tf.train.Int64List(value=list(features.shape[1:]))),
        fmt.LABEL_KEY: b(tf.io.encode_png(label.astype(np.uint8)).numpy()),
    }
    if features.shape[0] == 2:
        feature[fmt.FLIPPED_FEATURE_KEY] = b(tf.io.serialize_tensor(features[1]).numpy())
    # Deterministic: protobuf orders a map by a per-process hash seed otherwise, so equal
    # caches (a resumed run and an uninterrupted one) would differ in bytes and hash.
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(
        deterministic=True)


def _write_source(tf, folder, source_paths, wanted, info, compute, bar):
    """One pass over a source split in file order, writing every shard that takes
    images from it (two at once when a hold-out interleaves with train)."""
    import contextlib

    from deeplab_dpc.data import input_pipeline as ip

    examples = ip.build_dataset(source_paths, is_training=False, batch_size=1,
                                ignore_label=info.ignore_label, repeat=False).unbatch()
    last, open_shards = max(wanted), {}  # name -> [writer, images to come, its ExitStack]
    try:
        for index, example in enumerate(examples):
            if index > last:
                break
            if index not in wanted:
                continue
            name, chunk = wanted[index]
            if name not in open_shards:
                stack = contextlib.ExitStack()
                tmp = stack.enter_context(files.atomic_path(os.path.join(folder, name)))
                open_shards[name] = [tf.io.TFRecordWriter(tmp), len(chunk), stack]
            features, label = compute(example[ip.IMAGE], example[ip.LABEL])
            shard = open_shards[name]
            shard[0].write(_record(tf, example[ip.FILENAME].numpy(), features.numpy(),
                                   label.numpy()))
            shard[1] -= 1
            bar.update()
            if shard[1] == 0:  # complete: rename it into place now, so a kill keeps it
                shard[0].close()
                del open_shards[name]
                shard[2].close()
        if open_shards:
            raise InputError(f"{next(iter(open_shards))}: the source split ended early")
    except BaseException as e:
        for writer, _, stack in open_shards.values():
            writer.close()
            stack.__exit__(type(e), e, e.__traceback__)  # removes the temporary
        raise


def _shapes(tf, folder, names):
    """(feature shape, label shape) of every record of the shards."""
    for name in names:
        for record in tf.data.TFRecordDataset(os.path.join(folder, name)):
            ex = tf.train.Example.FromString(record.numpy()).features.feature
            feature_shape = tuple(int(d) for d in ex[fmt.FEATURE_SHAPE_KEY].int64_list.value)
            label = tf.io.decode_png(ex[fmt.LABEL_KEY].bytes_list.value[0])
            yield feature_shape, tuple(int(d) for d in label.shape[:2])
