"""The training loop: DeepLab's recipe in a small custom tf.distribute loop.

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

import keras
import numpy as np
import tensorflow as tf

from deeplab_dpc.data import datasets
from deeplab_dpc.data import input_pipeline as ip
from deeplab_dpc.errors import InputError
from deeplab_dpc.layers.ops import resize_bilinear
from deeplab_dpc.model import DeepLab
from deeplab_dpc.training import checkpoints, distribute, losses
from deeplab_dpc.training.config import MIXED_PRECISION, TrainConfig  # noqa: F401
from deeplab_dpc.training.schedules import DeepLabLearningRate


class TrainingDivergedError(InputError):
    """The loss became NaN or infinite; reported as one line like bad input."""


@dataclasses.dataclass
class TrainResult:
    model: DeepLab
    step: int  # the step reached
    losses: list  # total loss of each step this call ran


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


def configure_batch_norm(model, synchronized=False, trainable=True):
    """Sets every BN layer's training behaviour on a built model.

    Both are training-time switches, not part of the network, so they are not
    in `DeepLab`'s config: `synchronized` (Keras reads it at call time) makes
    BN compute batch statistics over all replicas; `trainable=False` freezes BN
    (Keras then runs it in inference mode and leaves gamma/beta untrained).
    """
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = synchronized
            layer.trainable = trainable


def build_model(config, num_classes, backbone_weights=None):
    """The DeepLab to train: `config.model` arguments, its dtype policy and BN switches."""
    with _dtype_policy(MIXED_PRECISION[config.mixed_precision]):
        model = DeepLab(num_classes, backbone_weights=backbone_weights,
                        **{"name": "deeplab", **config.model})
    configure_batch_norm(model, config.sync_batch_norm, config.fine_tune_batch_norm)
    return model


def default_dataset_fn(config, dataset_info):
    """`input_context -> per-replica batches` of the training split's TFRecords."""
    pattern = os.path.join(config.dataset_dir, f"{config.train_split}-*")

    def dataset_fn(input_context):
        return ip.build_dataset(
            pattern, is_training=True, batch_size=config.train_batch_size,
            crop_size=config.train_crop_size, ignore_label=dataset_info.ignore_label,
            min_scale_factor=config.min_scale_factor, max_scale_factor=config.max_scale_factor,
            scale_factor_step_size=config.scale_factor_step_size, seed=config.seed,
            input_context=input_context)

    return dataset_fn


def _resumed_dataset_fn(dataset_fn, start_step, micro_batches):
    """Skips what `start_step` steps consumed and groups N micro-batches per step.

    Skipping decodes the skipped elements (build_dataset offers no cheaper
    way); it costs once per restart.
    """
    def fn(ctx):
        per_pipeline = micro_batches * (ctx.num_replicas_in_sync // ctx.num_input_pipelines)
        ds = dataset_fn(ctx).map(lambda e: {ip.IMAGE: e[ip.IMAGE], ip.LABEL: e[ip.LABEL]})
        return ds.skip(start_step * per_pipeline).batch(micro_batches, drop_remainder=True)

    return fn


class _Step:
    """Builds the distributed train step (one tf.function) for a model/optimizer."""

    def __init__(self, config, model, optimizer, step, strategy, ignore_label):
        self.config, self.model, self.optimizer, self.step = config, model, optimizer, step
        self.strategy, self.ignore_label = strategy, ignore_label
        self.scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        # The loss is float32, or float64 for a float64 model (16-bit logits are upcast).
        self.loss_dtype = tf.float64 if model.compute_dtype == "float64" else tf.float32
        self.grads = tf.function(self._grads, jit_compile=True) if config.jit_compile \
            else self._grads
        self.function = tf.function(self._step)

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
        images, labels = batch[ip.IMAGE], batch[ip.LABEL]  # [N, b, ...]
        n = cfg.gradient_accumulation_steps
        ratio = losses.top_k_ratio(self.step, cfg.top_k_percent_pixels,
                                   cfg.hard_example_mining_step)
        if cfg.top_k_percent_pixels >= 1.0:
            ratio = 1.0  # static: no top-k op in the graph
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


def _write_images(strategy, model, outputs, colormap, step):
    """Image, label and the model's prediction (inference mode) of the first
    replica's first example of the last step; predicted here, eagerly, so the
    train step carries no extra output."""
    image, label = (strategy.experimental_local_results(t)[0] for t in outputs)
    label = tf.cast(label[..., 0], tf.int32)
    logits = tf.cast(model(image[None], training=False), tf.float32)
    prediction = tf.argmax(resize_bilinear(logits, tf.shape(label)), -1)[0]
    cmap = tf.constant(colormap)
    tf.summary.image("image", tf.cast(tf.clip_by_value(image, 0, 255), tf.uint8)[None], step)
    tf.summary.image("label", tf.gather(cmap, label)[None], step)
    tf.summary.image("prediction", tf.gather(cmap, prediction)[None], step)


def _check_finite(value, step, manager):
    if not np.isfinite(value):
        last = manager.latest_checkpoint or "none saved yet"
        raise TrainingDivergedError(
            f"loss is {value} at step {step}: training stopped, last good checkpoint kept "
            f"({last}); lower --base_learning_rate, or check that labels are < num_classes "
            "or the ignore label")


def _build(config, strategy, info, resume, chief, log):
    """Model, optimizer, step counter, schedule and checkpoint, restored when resuming
    or initialised from `tf_initial_checkpoint`; created under the strategy."""
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = build_model(config, info.num_classes,
                            None if resume else config.backbone_weights)
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
        checkpoint = checkpoints.make_checkpoint(model, optimizer, step)
        if chief:
            checkpoints.write_run_config(config.train_logdir, model, info, config.to_dict())
        if resume:
            checkpoints.restore(checkpoint, resume)
            log(f"resumed from {resume} at step {int(step.numpy())}")
        elif config.tf_initial_checkpoint:
            skipped = checkpoints.restore_initial_weights(
                model, config.tf_initial_checkpoint, config.initialize_last_layer,
                config.last_layers_contain_logits_only)
            log(f"initialised from {config.tf_initial_checkpoint}"
                + (f" except {', '.join(skipped)}" if skipped else ""))
    return model, optimizer, step, schedule, checkpoint


def _write_scalars(writer, at, loss, xent, reg, lr):
    with writer.as_default():
        tf.summary.scalar("loss/total", loss, at)
        tf.summary.scalar("loss/cross_entropy", xent, at)
        tf.summary.scalar("loss/regularization", reg, at)
        tf.summary.scalar("learning_rate", lr, at)


def train(config, strategy=None, dataset_fn=None, log=print):
    """Trains (or resumes) the run in `config.train_logdir`; returns a TrainResult.

    Args:
      config: a TrainConfig.
      strategy: a tf.distribute strategy (default: the default strategy).
      dataset_fn: `tf.distribute.InputContext -> tf.data.Dataset` of per-replica
        batches of {"image", "label"}; default: `config.dataset_dir`'s TFRecords.
        It must be deterministic: a resumed run skips what was consumed.
      log: where progress lines go.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if config.train_batch_size % strategy.num_replicas_in_sync:
        raise InputError(f"train_batch_size {config.train_batch_size} is not divisible by "
                         f"the {strategy.num_replicas_in_sync} replicas")
    if config.jit_compile and config.sync_batch_norm and strategy.num_replicas_in_sync > 1:
        raise InputError("jit_compile and sync_batch_norm do not combine: XLA cannot compile "
                         "the cross-replica all-reduce of synchronized batch norm")
    info = datasets.get_dataset_info(config.dataset, config.dataset_dir)
    chief, logdir = distribute.is_chief(strategy), config.train_logdir
    resume = tf.train.latest_checkpoint(logdir) if tf.io.gfile.isdir(logdir) else None
    model, optimizer, step, schedule, checkpoint = _build(
        config, strategy, info, resume, chief, log)

    # Only the chief's checkpoints are kept; other workers take part in saving
    # (it may need collectives) into a scratch directory they then delete.
    save_dir = logdir if chief else os.path.join(logdir, f".worker{distribute.task(strategy)[1]}")
    manager = tf.train.CheckpointManager(checkpoint, save_dir, config.max_checkpoints_to_keep,
                                         checkpoint_name=checkpoints.CHECKPOINT_NAME)
    writer = tf.summary.create_file_writer(logdir) if chief else tf.summary.create_noop_writer()
    start = at = int(step.numpy())
    data = _resumed_dataset_fn(dataset_fn or default_dataset_fn(config, info), start,
                               config.gradient_accumulation_steps)
    iterator = iter(strategy.distribute_datasets_from_function(data))
    train_step = _Step(config, model, optimizer, step, strategy, info.ignore_label).function

    total, history, last_log, last_time = config.training_number_of_steps, [], start, time.time()
    if at >= total:
        log(f"{logdir} has already trained {at} of {total} steps")
    while at < total:
        xent, reg, examples = train_step(iterator)
        at, xent, reg = int(step.numpy()), float(xent), float(reg)
        _check_finite(xent + reg, at, manager)  # before any save: keep the last good one
        history.append(xent + reg)
        if at % config.log_steps == 0 or at == total:
            now, lr = time.time(), float(schedule(at - 1))
            log(f"step {at}/{total} loss {xent + reg:.4f} (xent {xent:.4f}, reg {reg:.4f}) "
                f"lr {lr:.3g} {(at - last_log) / (now - last_time):.2f} steps/s")
            last_log, last_time = at, now
            _write_scalars(writer, at, xent + reg, xent, reg, lr)
        if at % config.save_interval_steps == 0 or at == total:
            manager.save(checkpoint_number=at)
            if chief:
                with writer.as_default():
                    _write_images(strategy, model, examples, info.colormap_array(), at)
            else:
                tf.io.gfile.rmtree(save_dir)
    writer.flush()
    return TrainResult(model, at, history)
