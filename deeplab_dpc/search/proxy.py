"""The proxy task (paper Sec. 3.3): a head trained on cached backbone features.

`run_trial(head, cache, settings, seed)` trains exactly the layers `DeepLab` puts
on its backbone (`layers.heads`: the cell or ASPP, then the 1x1 logits) through
the same training loop as end-to-end training, on random crops and flips of the
cached features, and scores mIOU on the cache's search split with eval's metric
code. It is a pure function of its arguments: ops are deterministic, the data
order and augmentation come from the seed, so the same call gives the same score.
A trial checkpoints into `trial_dir` and a rerun resumes from there.
"""
import dataclasses
import gc
import json
import os
import shutil
import tempfile
import time

from deeplab_dpc import files
from deeplab_dpc.errors import InputError
from deeplab_dpc.search import heads as heads_lib

LOSS_RESOLUTIONS = ("label", "logits")
INTERMEDIATE_FILE = "intermediate.json"  # the score at early_stopping_step, in trial_dir
MODEL_CLASS = "ProxyHead"  # `model_class` of a trial's run directory


@dataclasses.dataclass(frozen=True)
class ProxySettings:
    """Everything a proxy trial depends on besides head, cache and seed.

    Defaults are the paper's proxy schedule (30K steps, batch 8, poly rate from
    0.01) with the reference head (256 filters, BN decay 0.9997). Short schedules
    need `batch_norm_decay` near 0.9. `crop_size` is in feature cells (None: whole
    maps, which must then share one size). `loss_resolution`: "label" upsamples
    the logits to the label as DeepLab's loss does; "logits" takes the label at
    the feature cells instead (exact when label size = (cells - 1) * stride + 1),
    several times cheaper. `early_stopping_step` k > 0 scores the trial at step k
    and stops it when the rule says so (below the median of at least
    `early_stopping_min_trials` finished trials at k).
    """

    training_number_of_steps: int = 30000
    batch_size: int = 8
    base_learning_rate: float = 0.01
    learning_power: float = 0.9
    momentum: float = 0.9
    weight_decay: float = 4e-5
    crop_size: tuple = None
    flip: bool = True
    batch_norm_decay: float = 0.9997
    dpc_filters: int = 256
    dropout_rate: float = 0.1
    loss_resolution: str = "label"
    early_stopping_step: int = 0
    early_stopping_min_trials: int = 5
    train_split: str = "train"
    search_split: str = "minival"
    save_interval_steps: int = 1000
    complexity_image_size: tuple = None  # default: the cache's (scaled) image size

    def __post_init__(self):
        for name in ("training_number_of_steps", "batch_size", "dpc_filters",
                     "save_interval_steps", "early_stopping_min_trials"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be an integer >= 1, got {value!r}", param=name)
        if not self.base_learning_rate > 0:
            raise InputError("base_learning_rate must be > 0", param="base_learning_rate")
        if not 0 <= self.batch_norm_decay <= 1:
            raise InputError("batch_norm_decay must be in [0, 1]", param="batch_norm_decay")
        if not 0 <= self.dropout_rate < 1:
            raise InputError("dropout_rate must be in [0, 1)", param="dropout_rate")
        if self.loss_resolution not in LOSS_RESOLUTIONS:
            raise InputError(f"loss_resolution {self.loss_resolution!r}: expected label or "
                             "logits", param="loss_resolution")
        if not 0 <= self.early_stopping_step < self.training_number_of_steps:
            raise InputError("early_stopping_step must be in [0, training_number_of_steps)",
                             param=("early_stopping_step", "training_number_of_steps"))
        if self.search_split == "val":
            raise InputError("search_split: a search never ranks on val (it reports on it); "
                             "use minival", param="search_split")
        for name in ("crop_size", "complexity_image_size"):
            value = getattr(self, name)
            if value is not None:
                value = tuple(int(v) for v in value)
                if len(value) != 2 or min(value) < (2 if name == "crop_size" else 1):
                    raise InputError(f"{name} must be height,width"
                                     + (" of at least 2 cells" if name == "crop_size" else ""),
                                     param=name)
                object.__setattr__(self, name, value)

    def to_dict(self):
        d = dataclasses.asdict(self)
        return json.loads(json.dumps(d))

    @classmethod
    def from_dict(cls, d, source="proxy settings"):
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(d, dict):
            raise InputError(f"{source}: expected an object")
        unknown = set(d) - known
        if unknown:
            raise InputError(f"{source}: unknown field {sorted(unknown)[0]!r}")
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class ProxyResult:
    score: float  # mIOU on the search split (at early_stopping_step when stopped)
    per_class_iou: list  # None for classes absent from labels and predictions
    params: int  # conv weights of the branches (the paper's convention)
    madds: int  # their multiply-adds at `complexity_image_size`
    head_params: int  # every trainable weight of head + logits
    complexity_image_size: list
    steps: int
    seed: int
    stopped: bool
    intermediate: dict  # {step: mIOU} scored before the end (early stopping)
    final_loss: float  # of the last step this call ran
    wall_time_s: float
    code_version: str
    cache_hash: str
    search_split: str

    def to_dict(self):
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["intermediate"] = {int(k): v for k, v in d.get("intermediate", {}).items()}
        return cls(**d)


def check_cache(cache, settings):
    """InputError naming the setting when the cache and the settings do not fit (a
    missing split, images of several sizes without a crop or complexity size): found
    before a trial trains, not after."""
    for name in ("train_split", "search_split"):
        split = getattr(settings, name)
        if split not in cache.splits:
            raise InputError(f"{name} {split!r}: the feature cache {cache.path} has no such "
                             f"split (it has {', '.join(sorted(cache.splits))})", param=name)
    if settings.crop_size is None and cache.feature_shape(settings.train_split) is None:
        raise InputError("the cache's images have several sizes: set crop_size",
                         param="crop_size")
    complexity_image_size(cache, settings)
    for split in (settings.train_split, settings.search_split):
        cache.shard_paths(split)  # missing or truncated shards


def as_cache(cache):
    from deeplab_dpc.cache_features.format import FeatureCache

    return cache if isinstance(cache, FeatureCache) else FeatureCache(cache)


def build_proxy_model(head, cache, settings):
    """Features -> head -> logits: `DeepLab`'s head layers on the cache's features."""
    import keras

    from deeplab_dpc.layers.heads import build_head, build_logits

    inputs = keras.Input((None, None, cache.feature_channels), name="image")
    layer = build_head(**heads_lib.deeplab_head_args(head), output_stride=cache.output_stride,
                       filters=settings.dpc_filters, dropout_rate=settings.dropout_rate,
                       batch_norm_decay=settings.batch_norm_decay,
                       weight_decay=settings.weight_decay)
    logits = build_logits(cache.num_classes, settings.weight_decay)(layer(inputs))
    return keras.Model(inputs, logits, name="proxy_head")


def complexity_image_size(cache, settings):
    if settings.complexity_image_size:
        return settings.complexity_image_size
    shape = cache.label_shape(settings.train_split)
    if shape is None:
        raise InputError("the cache's images have several sizes: set complexity_image_size",
                         param="complexity_image_size")
    return tuple(shape)


def head_cost(head, cache, settings):
    """(branch params, branch MAdds, trainable params of head + logits, image size):
    the project's complexity counter, at `complexity_image_size`."""
    from deeplab_dpc.layers.heads import build_head
    from deeplab_dpc.stats.complexity import head_complexity

    size = complexity_image_size(cache, settings)
    stride = cache.output_stride
    shape = (1, (size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1,
             cache.feature_channels)
    layer = build_head(**heads_lib.deeplab_head_args(head), output_stride=stride,
                       filters=settings.dpc_filters, dropout_rate=settings.dropout_rate)
    cost = head_complexity(layer, shape)
    logits = (settings.dpc_filters + 1) * cache.num_classes
    return cost.branch_params, cost.branch_macs, cost.trainable_params + logits, list(size)


def proxy_dataset(cache, settings, seed, input_context=None):
    """Training batches of the cache's train split: {"image": features, "label"}.

    Per element, from a seeded stream: a random crop of `crop_size` cells (the
    label's matching pixels with it), a left-right flip (the flipped image's
    cached features when the cache has them). Deterministic given the seed.
    """
    import tensorflow as tf

    from deeplab_dpc.common import IMAGE, LABEL

    split, stride = settings.train_split, cache.output_stride
    crop, ignore = settings.crop_size, cache.ignore_label
    if crop is None:
        shape = cache.feature_shape(split)
        if shape is None:
            raise InputError("the cache's images have several sizes: set crop_size",
                             param="crop_size")
        crop = shape[:2]
    label_crop = ((crop[0] - 1) * stride + 1, (crop[1] - 1) * stride + 1)
    flipped = cache.flipped

    # Held in memory as stored (float16 by default: half of float32), cast per batch.
    ds = cache.dataset(split, stored_dtype=True)
    if input_context is not None:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    count = cache.count(split)
    ds = ds.cache().shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat()
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def augment(example, element_seed):
        example = {k: tf.cast(v, tf.float32) if k.startswith("features") else v
                   for k, v in example.items()}
        feats, label = example["features"], example["label"]
        if settings.flip:
            flip = tf.random.stateless_uniform([], element_seed) < 0.5
            other = example["features_flipped"] if flipped else tf.reverse(feats, [1])
            feats = tf.where(flip, other, feats)
            label = tf.where(flip, tf.reverse(label, [1]), label)
        shape = tf.shape(feats)
        h, w = tf.maximum(shape[0], crop[0]), tf.maximum(shape[1], crop[1])
        feats = tf.pad(feats, [[0, h - shape[0]], [0, w - shape[1]], [0, 0]])
        lh, lw = (h - 1) * stride + 1, (w - 1) * stride + 1
        lshape = tf.shape(label)
        label = tf.pad(label, [[0, tf.maximum(lh - lshape[0], 0)],
                               [0, tf.maximum(lw - lshape[1], 0)], [0, 0]],
                       constant_values=ignore)
        offset_seed = tf.random.experimental.stateless_fold_in(element_seed, 1)
        top = tf.random.stateless_uniform([], offset_seed, 0, h - crop[0] + 1, tf.int32)
        left = tf.random.stateless_uniform(
            [], tf.random.experimental.stateless_fold_in(element_seed, 2), 0,
            w - crop[1] + 1, tf.int32)
        feats = feats[top:top + crop[0], left:left + crop[1]]
        label = label[top * stride:top * stride + label_crop[0],
                      left * stride:left * stride + label_crop[1]]
        if settings.loss_resolution == "logits":
            label = label[::stride, ::stride]
            label = tf.ensure_shape(label, [crop[0], crop[1], 1])
        else:
            label = tf.ensure_shape(label, [*label_crop, 1])
        return {IMAGE: tf.ensure_shape(feats, [crop[0], crop[1], cache.feature_channels]),
                LABEL: label}

    batch = (input_context.get_per_replica_batch_size(settings.batch_size)
             if input_context is not None else settings.batch_size)
    ds = tf.data.Dataset.zip(ds, seeds).map(augment, num_parallel_calls=tf.data.AUTOTUNE,
                                            deterministic=True)
    return ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def score(model, cache, split):
    """(mIOU, per-class IoU list) of `model` on the cache's `split`, eval's way: logits
    resized (align corners) to the label, argmax, one confusion matrix."""
    import numpy as np
    import tensorflow as tf

    from deeplab_dpc.eval import metrics
    from deeplab_dpc.layers.ops import resize_bilinear

    num_classes, ignore = cache.num_classes, cache.ignore_label

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, cache.feature_channels], tf.float32),
        tf.TensorSpec([None, None, 1], tf.int32)])
    def confusion(features, label):
        logits = tf.cast(model(features[None], training=False), tf.float32)
        prediction = tf.argmax(resize_bilinear(logits, tf.shape(label)[:2]), -1,
                               output_type=tf.int32)[0]
        return metrics.confusion_matrix(label[..., 0], prediction, num_classes, ignore)

    matrix = np.zeros((num_classes, num_classes), np.int64)
    for example in cache.dataset(split):
        matrix += confusion(example["features"], example["label"]).numpy()
    iou = metrics.per_class_iou(matrix)
    return metrics.mean_iou(matrix), [None if np.isnan(v) else float(v) for v in iou]


def describe_bad_shard(cache, split):
    """A line naming the first cache shard of `split` that cannot be read, or None."""
    import tensorflow as tf

    for path in cache.shard_paths(split):
        index = 0
        try:
            for _ in tf.data.TFRecordDataset(path):
                index += 1
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            return (f"{path}: record {index} of the feature cache cannot be read "
                    f"({' '.join(e.message.split())[:120]}); rerun cache_features into a new "
                    "feature_cache_dir")
    return None


def _train_config(cache, settings, seed, logdir):
    from deeplab_dpc.train.config import TrainConfig

    stride = cache.output_stride
    cells = settings.crop_size or (cache.feature_shape(settings.train_split) or (2, 2))[:2]
    return TrainConfig(
        train_logdir=logdir, dataset=cache.settings["dataset"]["name"],
        train_split=settings.train_split, model={"output_stride": stride},
        train_crop_size=tuple((c - 1) * stride + 1 for c in cells),
        min_scale_factor=1.0, max_scale_factor=1.0, scale_factor_step_size=0,
        train_batch_size=settings.batch_size, base_learning_rate=settings.base_learning_rate,
        learning_power=settings.learning_power, momentum=settings.momentum,
        training_number_of_steps=settings.training_number_of_steps,
        save_interval_steps=settings.save_interval_steps,
        log_steps=max(1, settings.training_number_of_steps // 10), seed=seed)


def configure_determinism():
    """Deterministic kernels (a trial's score is a function of its inputs). Thread
    counts are fixed by the worker before TensorFlow starts (`search.workers`)."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def _gradient_registry():
    """TensorFlow's global gradient registry (a dict), or None where its private
    layout has changed. A traced `tf.custom_gradient`, which `ReplicaContext.all_reduce`
    is and which every train step calls, registers its gradient there under a new
    name for good, and that entry holds the whole traced step graph: about 9 MB per
    trial of the bench's head (`BUILD_NOTES.md`)."""
    from tensorflow.python.framework import ops

    return getattr(getattr(ops, "_gradient_registry", None), "_registry", None)


def _forget_custom_gradients(registry, before):
    """Drops the custom gradients registered since `before` (a set of names): they
    belong to this trial's graphs, which nothing uses once the trial has ended."""
    if registry is not None:
        for name in set(registry) - before:
            if name.startswith("CustomGradient-"):
                del registry[name]


def _loop_args(head, cache, settings, seed, trial_dir, log):
    """`loop.train`'s arguments for a trial of `head` checkpointing in `trial_dir`."""
    from deeplab_dpc import run_dir
    from deeplab_dpc.data.datasets import DatasetInfo
    from deeplab_dpc.train import loop

    config = _train_config(cache, settings, seed, trial_dir)
    info = DatasetInfo(cache.settings["dataset"]["name"], cache.num_classes,
                       cache.ignore_label, cache.class_names)
    record = {"proxy": settings.to_dict(), "seed": seed, "cache": cache.content_hash,
              "head": heads_lib.head_to_json(head)}
    hooks = loop.TrainHooks(
        describe_data_error=lambda error: describe_bad_shard(cache, settings.train_split),
        check_run_config=lambda m: run_dir.check_run_config(trial_dir, m, MODEL_CLASS),
        write_run_config=lambda m: run_dir.write_run_config(trial_dir, m, info, record,
                                                            MODEL_CLASS))
    return dict(config=config, model_fn=lambda: build_proxy_model(head, cache, settings),
                dataset_fn=lambda ctx: proxy_dataset(cache, settings, seed, ctx),
                ignore_label=cache.ignore_label, hooks=hooks, log=log or (lambda line: None))


def learning_curve(head, cache, settings=ProxySettings(), seed=0, every=100, trial_dir=None,
                   log=None):
    """[(step, mIOU on the search split)] of one trial, scored every `every` steps of its
    unchanged schedule (the loop pauses at each, is scored and goes on), to choose a
    step count past the jump in which a context cue is learned. Resumes from
    `trial_dir`'s checkpoints."""
    import keras

    from deeplab_dpc.train import loop

    if every < 1:
        raise InputError("every must be >= 1", param="every")
    cache = as_cache(cache)
    check_cache(cache, settings)
    temporary = trial_dir is None
    trial_dir = os.fspath(trial_dir or tempfile.mkdtemp(prefix="proxy-curve-"))
    configure_determinism()
    registry = _gradient_registry()
    registered = set(registry or ())
    args = _loop_args(head, cache, settings, seed, trial_dir, log)
    saved = os.path.join(trial_dir, "learning_curve.json")
    points = {}
    if os.path.exists(saved):  # a resumed curve keeps the points scored before the kill
        points = {int(k): v for k, v in files.read_json(saved, "learning curve").items()}
    total = settings.training_number_of_steps
    try:
        for step in list(range(every, total, every)) + [total]:
            if step in points:
                continue
            result = loop.train(**args, until=step if step < total else None)
            if result.step != step:  # resumed past this step: its score is gone
                continue
            points[step] = float(score(result.model, cache, settings.search_split)[0])
            files.write_json_atomically(saved, points)
            keras.backend.clear_session()
    finally:
        if temporary:
            shutil.rmtree(trial_dir, ignore_errors=True)
        _forget_custom_gradients(registry, registered)
    return sorted(points.items())


def run_trial(head, cache, settings=ProxySettings(), seed=0, trial_dir=None, stopper=None,
              log=None):
    """Trains `head` on the cache and scores it; returns a `ProxyResult`.

    Args:
      head: a `spec.CellSpec` or a `heads.AsppHead`.
      cache: a `FeatureCache` or its path.
      settings: `ProxySettings`.
      seed: initialisation, data order and augmentation.
      trial_dir: where the trial checkpoints (resumed from when it holds one); None:
        a temporary folder, removed at the end.
      stopper: `(step, score) -> bool`, asked at `settings.early_stopping_step`.
      log: where the loop's progress lines go (default: nowhere).
    """
    import keras

    from deeplab_dpc import code_version
    from deeplab_dpc.train import loop

    cache = as_cache(cache)
    check_cache(cache, settings)  # one line now, not after training
    started = time.time()
    temporary = trial_dir is None
    trial_dir = tempfile.mkdtemp(prefix="proxy-trial-") if temporary else os.fspath(trial_dir)
    configure_determinism()
    registry = _gradient_registry()
    registered = set(registry or ())
    args = _loop_args(head, cache, settings, seed, trial_dir, log)
    try:
        intermediate, stopped = {}, False
        k = settings.early_stopping_step
        if k and stopper is not None:
            # Scored once at step k and kept: a trial resumed past k asks the rule with
            # the same score, not with that of a later step.
            saved = os.path.join(trial_dir, INTERMEDIATE_FILE)
            if os.path.exists(saved):
                with open(saved) as f:
                    miou, per_class = json.load(f)
                result = None
            else:
                result = loop.train(**args, until=k)
                miou, per_class = score(result.model, cache, settings.search_split)
                files.write_json_atomically(saved, [miou, per_class])
            intermediate[k] = miou
            stopped = bool(stopper(k, miou))
        if not stopped or result is None:
            result = loop.train(**args, until=k if stopped else None)
            if not stopped:
                miou, per_class = score(result.model, cache, settings.search_split)
        params, madds, head_params, size = head_cost(head, cache, settings)
        losses = result.losses
        return ProxyResult(
            score=float(miou), per_class_iou=per_class, params=params, madds=madds,
            head_params=head_params, complexity_image_size=size, steps=result.step,
            seed=seed, stopped=stopped, intermediate=intermediate,
            final_loss=float(losses[-1]) if losses else None,  # None: resumed at its end
            wall_time_s=time.time() - started, code_version=code_version(),
            cache_hash=cache.content_hash, search_split=settings.search_split)
    finally:
        if temporary:
            shutil.rmtree(trial_dir, ignore_errors=True)
        # A worker's memory stays flat over many trials.
        _forget_custom_gradients(registry, registered)
        keras.backend.clear_session()
        gc.collect()
