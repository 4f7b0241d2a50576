"""The training loop: DeepLab's recipe in a small custom tf.distribute loop.

It trains any Keras model that maps `batch["image"]` to logits for
`batch["label"]`: the caller passes `model_fn` and `dataset_fn`, and `TrainHooks`
for what depends on the model (the run config, image summaries, which batch-norm
layers train). DeepLab's are in `train.deeplab`; the search's proxy task trains
a head on cached backbone features through the same loop, so both get the same
loss, schedule, checkpoints, resume and NaN stop.

Keras `fit` is not used: under MultiWorkerMirroredStrategy it fails in TF 2.21,
and the reference loss needs one normalizer shared by every replica and
micro-batch (see `losses`), which `fit`'s per-replica mean cannot express.

One step: every replica takes N = gradient_accumulation_steps micro-batches,
sums the gradients of (its pixel-loss sum / the global normalizer +
regularization / (replicas * N)), and applies them once; the optimizer sums the
gradients over replicas. So the update equals that of one device on the whole
N x train_batch_size batch (except BN batch statistics, which are per
micro-batch, across replicas with `sync_batch_norm`).

A run is resumable: the checkpoint holds model, optimizer slots, step and
dropout's generator state, and the input pipeline is rebuilt from the seed and
skips the batches already consumed, so a restarted run continues as if it had
never stopped.
"""
import contextlib
import dataclasses
import os
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from deeplab_dpc import run_dir
from deeplab_dpc.common import IMAGE, LABEL
from deeplab_dpc.errors import InputError
from deeplab_dpc.progress import kill_point
from deeplab_dpc.train import distribute, losses
from deeplab_dpc.train.config import MIXED_PRECISION
from deeplab_dpc.train.schedules import DeepLabLearningRate


class TrainingDivergedError(InputError):
    """The loss became NaN or infinite; reported as one line like bad input."""


@dataclasses.dataclass
class TrainResult:
    model: keras.Model
    step: int  # the step reached
    losses: list  # total loss of each step this call ran


@dataclasses.dataclass(frozen=True)
class TrainHooks:
    """What the loop asks of the model being trained; each hook is optional.

    check_run_config(model): chief only, before a checkpoint is restored: refuse a
      run directory that holds another model (raise InputError).
    write_run_config(model): chief only, after the first step succeeded (so a run
      whose data, model or initial checkpoint fails leaves no config behind).
    initialize(model) -> str or None: a fresh run only (not a resumed one), inside
      the strategy scope: e.g. copy an initial checkpoint; returns a log line.
    describe_data_error(error) -> str or None: when reading the data failed, a
      one-line message naming the bad file (e.g. the shard), or None.
    trains_batch_norm(layer) -> bool: which BN layers follow
      `fine_tune_batch_norm` (default: all); the others are frozen (inference mode).
    write_images(model, examples, step): chief only, at each checkpoint, inside
      the summary writer; `examples` = (first image, its label) of the last step.
    """

    check_run_config: Callable = None
    write_run_config: Callable = None
    initialize: Callable = None
    trains_batch_norm: Callable = None
    write_images: Callable = None
    describe_data_error: Callable = None


@contextlib.contextmanager
def _dtype_policy(name):
    """Builds under policy `name`; None keeps the global one (float32 unless set)."""
    previous = keras.config.dtype_policy()
    if name:
        keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def configure_batch_norm(model, synchronized=False, trainable=True, selects=None):
    """Sets the training behaviour of a built model's BN layers.

    These are training-time switches, not part of the network, so they are not
    in a model's config: `synchronized` (Keras reads it at call time) makes
    BN compute batch statistics over all replicas; `trainable=False` freezes BN
    (Keras then runs it in inference mode and leaves gamma/beta untrained).
    `selects(layer)`: the layers `trainable` applies to; the others are frozen.
    """
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = synchronized
            layer.trainable = trainable and (selects is None or bool(selects(layer)))


def _resumed_dataset_fn(dataset_fn, start_step, micro_batches):
    """Skips what `start_step` steps consumed and groups N micro-batches per step.

    Skipping decodes the skipped elements (build_dataset offers no cheaper
    way); it costs once per restart.
    """
    def fn(ctx):
        per_pipeline = micro_batches * (ctx.num_replicas_in_sync // ctx.num_input_pipelines)
        ds = dataset_fn(ctx).map(lambda e: {IMAGE: e[IMAGE], LABEL: e[LABEL]})
        return ds.skip(start_step * per_pipeline).batch(micro_batches, drop_remainder=True)

    return fn


class TrainStep:
    """One optimizer step of the loop, as a tf.function: `train_step(iterator)`.

    Takes the next element of a distributed iterator whose per-replica elements
    are {"image": [N, b, ...], "label": [N, b, ..., 1]} (N micro-batches, see the
    module docstring), applies one update to `model`, increments `step` and
    returns (cross-entropy, regularization, (first image, its label)): losses
    summed over replicas. A caller that drives its own loop (e.g. to compare a
    head's steps on cached features with end-to-end steps) uses it directly.
    """

    def __init__(self, config, model, optimizer, step, strategy, ignore_label):
        self.config, self.model, self.optimizer, self.step = config, model, optimizer, step
        self.strategy, self.ignore_label = strategy, ignore_label
        self.scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        # The loss is float32, or float64 for a float64 model (16-bit logits are upcast).
        self.loss_dtype = tf.float64 if model.compute_dtype == "float64" else tf.float32
        self.grads = tf.function(self._grads, jit_compile=True) if config.jit_compile \
            else self._grads
        self.function = tf.function(self._step)

    def __call__(self, iterator):
        return self.function(iterator)

    def _grads(self, images, labels, normalizer, ratio, reg_share):
        """Gradient of this micro-batch's share of the global loss."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            xent = losses.pixel_loss_sum(logits, labels, self.ignore_label, ratio)
            xent = xent / tf.cast(normalizer, xent.dtype)
            reg = tf.add_n(self.model.losses) * reg_share if self.model.losses else 0.0
            reg = tf.cast(reg, xent.dtype)
            total = xent + reg
            if self.scaled:
                total = self.optimizer.scale_loss(total)
        grads = tape.gradient(total, variables,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return grads, xent, reg

    def _replica_step(self, batch):
        cfg, ctx = self.config, tf.distribute.get_replica_context()
        images, labels = batch[IMAGE], batch[LABEL]  # [N, b, ...]
        n = cfg.gradient_accumulation_steps
        if cfg.top_k_percent_pixels >= 1.0:
            ratio = 1.0  # static: no top-k op in the graph
        else:
            ratio = losses.top_k_ratio(self.step, cfg.top_k_percent_pixels,
                                       cfg.hard_example_mining_step)
        local = tf.add_n([losses.normalizer(labels[i], self.ignore_label, ratio)
                          for i in range(n)])
        normalizer = tf.maximum(ctx.all_reduce(tf.distribute.ReduceOp.SUM, local), 1.0)
        args = (normalizer, ratio, 1.0 / (self.strategy.num_replicas_in_sync * n))

        if n == 1:
            grads, xent, reg = self.grads(images[0], labels[0], *args)
        else:  # a graph loop: the forward/backward is traced once, whatever N
            variables = self.model.trainable_variables
            grads = [tf.zeros(v.shape, v.dtype) for v in variables]
            xent = reg = tf.zeros([], self.loss_dtype)
            for i in tf.range(n):
                more, x, r = self.grads(images[i], labels[i], *args)
                grads = [a + b for a, b in zip(grads, more)]
                xent, reg = xent + x, reg + r
        if self.scaled:
            grads = self._agree_on_finite(grads, ctx)
        self.optimizer.apply(grads, self.model.trainable_variables)
        return xent, reg, images[0][0], labels[0][0]

    @staticmethod
    def _agree_on_finite(grads, ctx):
        """LossScaleOptimizer decides to skip a step from one replica's local
        gradients; poison every replica's if any has overflowed, or replicas would
        disagree (a NaN update on one GPU, a hang across workers)."""
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        bad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, 1.0 - tf.cast(finite, tf.float32))
        poison = tf.where(bad > 0, float("nan"), 0.0)
        return [g + tf.cast(poison, g.dtype) for g in grads]

    def _step(self, iterator):
        out = self.strategy.run(self._replica_step, args=(next(iterator),))
        xent = self.strategy.reduce(tf.distribute.ReduceOp.SUM, out[0], axis=None)
        reg = self.strategy.reduce(tf.distribute.ReduceOp.SUM, out[1], axis=None)
        self.step.assign_add(1)
        return xent, reg, out[2:]


def _check_finite(value, step, manager):
    if not np.isfinite(value):
        last = manager.latest_checkpoint or "none saved yet"
        raise TrainingDivergedError(
            f"loss is {value} at step {step}: training stopped, last good checkpoint kept "
            f"({last}); lower base_learning_rate, or check that labels are < num_classes "
            "or the ignore label", param="base_learning_rate")


def _build(config, strategy, model_fn, hooks, resume, chief, log):
    """Model, optimizer, step counter, schedule and checkpoint, restored when resuming
    or initialised by `hooks.initialize`; created under the strategy."""
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        with _dtype_policy(MIXED_PRECISION[config.mixed_precision]):
            model = model_fn()
        configure_batch_norm(model, config.sync_batch_norm, config.fine_tune_batch_norm,
                             hooks.trains_batch_norm)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        schedule = DeepLabLearningRate(
            config.base_learning_rate, config.training_number_of_steps,
            config.learning_policy, config.learning_power, config.learning_rate_decay_step,
            config.learning_rate_decay_factor, config.slow_start_step,
            config.slow_start_learning_rate)
        # The rate follows our step (not the optimizer's count, which float16 loss
        # scaling leaves behind on skipped steps). Fixed names: slot paths are
        # checkpoint keys and must not depend on how many optimizers exist.
        optimizer = keras.optimizers.SGD(lambda: schedule(step), momentum=config.momentum,
                                         name="sgd")
        if config.mixed_precision == "float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name="loss_scale")
        optimizer.build(model.trainable_variables)
        checkpoint = run_dir.make_checkpoint(model, optimizer, step)
        if chief and hooks.check_run_config:
            hooks.check_run_config(model)
        if resume:
            run_dir.restore(checkpoint, resume)
            log(f"resumed from {resume} at step {int(step.numpy())}")
        elif hooks.initialize:
            line = hooks.initialize(model)
            if line:
                log(line)
    return model, optimizer, step, schedule, checkpoint


def _remove_unfinished_checkpoints(logdir):
    """A checkpoint write killed midway leaves a `ckpt-N_temp/` folder that nothing
    reads or removes; the chief removes them before it saves again."""
    if tf.io.gfile.isdir(logdir):
        for path in tf.io.gfile.glob(os.path.join(logdir, f"{run_dir.CHECKPOINT_NAME}-*_temp")):
            tf.io.gfile.rmtree(path)


def _raise_data_error(error, hooks):
    """Reading the training data failed: one line naming the bad file when the hook
    finds it; other DataLossErrors in one line too; anything else is a bug."""
    where = hooks.describe_data_error(error) if hooks.describe_data_error else None
    if where:
        raise InputError(where) from None
    if isinstance(error, tf.errors.DataLossError):
        raise InputError(f"cannot read the training data: "
                         f"{' '.join(error.message.split())[:200]}") from None
    raise error


def _write_scalars(writer, at, loss, xent, reg, lr):
    with writer.as_default():
        tf.summary.scalar("loss/total", loss, at)
        tf.summary.scalar("loss/cross_entropy", xent, at)
        tf.summary.scalar("loss/regularization", reg, at)
        tf.summary.scalar("learning_rate", lr, at)


def train(config, model_fn, dataset_fn, ignore_label, strategy=None, hooks=TrainHooks(),
          log=print, until=None):
    """Trains (or resumes) the run in `config.train_logdir`; returns a TrainResult.

    Args:
      config: a TrainConfig; the loop reads its optimisation and bookkeeping
        fields (schedule, batch, accumulation, precision, BN switches, saving,
        seed). Its data and model fields are DeepLab's (`train.deeplab`).
      model_fn: `() -> keras.Model`, called once inside `strategy.scope()` (a
        model built outside it cannot be mirrored) under the mixed-precision policy.
      dataset_fn: `tf.distribute.InputContext -> tf.data.Dataset` of per-replica
        batches of {"image", "label"}. It must be deterministic: a resumed run
        skips what was consumed.
      ignore_label: the label value that the loss leaves out.
      strategy: a tf.distribute strategy (default: the default strategy).
      hooks: a TrainHooks.
      log: where progress lines go.
      until: stop at this step (saving a checkpoint there) instead of at
        `training_number_of_steps`, which still sets the schedule: a later call
        resumes from it as if the run had never paused (the proxy task scores a
        trial midway to decide whether to stop it early).
    """
    strategy = strategy or tf.distribute.get_strategy()
    if config.train_batch_size % strategy.num_replicas_in_sync:
        raise InputError(f"train_batch_size {config.train_batch_size} is not divisible by "
                         f"the {strategy.num_replicas_in_sync} replicas",
                         param="train_batch_size")
    if config.jit_compile and config.sync_batch_norm and strategy.num_replicas_in_sync > 1:
        raise InputError("jit_compile and sync_batch_norm do not combine: XLA cannot compile "
                         "the cross-replica all-reduce of synchronized batch norm",
                         param=("jit_compile", "sync_batch_norm"))
    chief, logdir = distribute.is_chief(strategy), config.train_logdir
    resume = run_dir.latest_checkpoint(logdir)
    model, optimizer, step, schedule, checkpoint = _build(
        config, strategy, model_fn, hooks, resume, chief, log)

    # Only the chief's checkpoints are kept; other workers take part in saving
    # (it may need collectives) into a scratch directory they then delete.
    save_dir = logdir if chief else os.path.join(logdir, f".worker{distribute.task(strategy)[1]}")
    if chief:
        _remove_unfinished_checkpoints(logdir)
    manager = tf.train.CheckpointManager(checkpoint, save_dir, config.max_checkpoints_to_keep,
                                         checkpoint_name=run_dir.CHECKPOINT_NAME)
    writer = None  # created after the first step: a failed start leaves no events file
    start = at = int(step.numpy())
    data = _resumed_dataset_fn(dataset_fn, start, config.gradient_accumulation_steps)
    iterator = iter(strategy.distribute_datasets_from_function(data))
    train_step = TrainStep(config, model, optimizer, step, strategy, ignore_label)

    total, history, last_log, last_time = config.training_number_of_steps, [], start, time.time()
    end = total if until is None else min(int(until), total)
    if at >= end:
        log(f"{logdir} has already trained {at} of {total} steps")
    while at < end:
        try:
            xent, reg, examples = train_step(iterator)
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            _raise_data_error(e, hooks)
        if writer is None:  # data, model and initial weights all work: record the run
            if chief and hooks.write_run_config:
                hooks.write_run_config(model)
            writer = (tf.summary.create_file_writer(logdir) if chief
                      else tf.summary.create_noop_writer())
        at, xent, reg = int(step.numpy()), float(xent), float(reg)
        _check_finite(xent + reg, at, manager)  # before any save: keep the last good one
        history.append(xent + reg)
        if at % config.log_steps == 0 or at == end:
            now, lr = time.time(), float(schedule(at - 1))
            log(f"step {at}/{total} loss {xent + reg:.4f} (xent {xent:.4f}, reg {reg:.4f}) "
                f"lr {lr:.3g} {(at - last_log) / (now - last_time):.2f} steps/s")
            last_log, last_time = at, now
            _write_scalars(writer, at, xent + reg, xent, reg, lr)
        if at % config.save_interval_steps == 0 or at == end:
            manager.save(checkpoint_number=at)
            if chief and hooks.write_images:
                first = tuple(strategy.experimental_local_results(t)[0] for t in examples)
                with writer.as_default():
                    hooks.write_images(model, first, at)
            elif not chief:
                tf.io.gfile.rmtree(save_dir)
        kill_point("train step", at)
    if writer is not None:
        writer.flush()
    return TrainResult(model, at, history)
