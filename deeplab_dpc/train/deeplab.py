"""Training DeepLab: the model, data and hooks that `loop.train` takes.

This is what `python -m deeplab_dpc.train` runs: a `TrainConfig`'s model fields
build the `DeepLab`, its data fields the input pipeline over the dataset's
TFRecords; the run directory gets DeepLab's `model_config.json` and image
summaries; a fresh run starts from `backbone_weights` or `tf_initial_checkpoint`.
"""
import os

import tensorflow as tf

from deeplab_dpc import files, run_dir
from deeplab_dpc.data import datasets
from deeplab_dpc.data import input_pipeline as ip
from deeplab_dpc.errors import InputError
from deeplab_dpc.import_tf1_checkpoint import converter
from deeplab_dpc.layers.ops import resize_bilinear
from deeplab_dpc.model import DeepLab
from deeplab_dpc.train import initial_checkpoint, loop


def build_model(config, num_classes, backbone_weights=None):
    """The DeepLab of `config.model` (call it inside the strategy scope)."""
    return DeepLab(num_classes, backbone_weights=backbone_weights,
                   **{"name": "deeplab", **config.model})


def _train_pattern(config):
    return os.path.join(config.dataset_dir, f"{config.train_split}-*")


def default_dataset_fn(config, dataset_info):
    """`input_context -> per-replica batches` of the training split's TFRecords."""
    pattern = _train_pattern(config)

    def dataset_fn(input_context):
        return ip.build_dataset(
            pattern, is_training=True, batch_size=config.train_batch_size,
            crop_size=config.train_crop_size, ignore_label=dataset_info.ignore_label,
            min_scale_factor=config.min_scale_factor, max_scale_factor=config.max_scale_factor,
            scale_factor_step_size=config.scale_factor_step_size,
            min_resize_value=config.min_resize_value, max_resize_value=config.max_resize_value,
            resize_factor=config.resize_factor, seed=config.seed, input_context=input_context)

    return dataset_fn


def image_summaries(colormap):
    """The `write_images` hook: image, label and the model's prediction (inference
    mode) of an example of the last step; predicted here, eagerly, so the train
    step carries no extra output."""
    cmap = tf.constant(colormap)

    def write_images(model, examples, step):
        image, label = examples
        label = tf.cast(label[..., 0], tf.int32)
        logits = tf.cast(model(image[None], training=False), tf.float32)
        prediction = tf.argmax(resize_bilinear(logits, tf.shape(label)), -1)[0]
        tf.summary.image("image", tf.cast(tf.clip_by_value(image, 0, 255), tf.uint8)[None],
                         step)
        tf.summary.image("label", tf.gather(cmap, label)[None], step)
        tf.summary.image("prediction", tf.gather(cmap, prediction)[None], step)

    return write_images


def deeplab_hooks(config, dataset_info, tfrecords=True):
    """DeepLab's `TrainHooks`: its run config, initial checkpoint and image summaries
    (and, when it reads `config.dataset_dir`'s TFRecords, which shard is bad)."""

    tf1_reports = []  # written beside model_config.json, after the first step

    def initialize(model):
        if not config.tf_initial_checkpoint:
            return None
        skipped, tf1_report = initial_checkpoint.restore_initial_weights(
            model, config.tf_initial_checkpoint, config.initialize_last_layer,
            config.last_layers_contain_logits_only)
        line = (f"initialised from {config.tf_initial_checkpoint}"
                + (f" except {', '.join(skipped)}" if skipped else ""))
        if tf1_report is not None:
            tf1_reports.append(tf1_report)
            line += f" (TF1 checkpoint: {tf1_report.summary()})"
        return line

    def write_run_config(model):
        run_dir.write_run_config(config.train_logdir, model, dataset_info, config.to_dict())
        for report in tf1_reports:
            files.write_json_atomically(
                os.path.join(config.train_logdir, converter.REPORT_FILE), report.to_dict())

    def describe_data_error(error):
        # Only errors of the input pipeline send us scanning the shards; a model's
        # InvalidArgumentError (a bug) is re-raised at once.
        if not isinstance(error, tf.errors.DataLossError) and \
                "IteratorGetNext" not in error.message:
            return None
        try:
            bad = ip.locate_bad_record(_train_pattern(config))
        except (InputError, tf.errors.OpError):  # no shards at all, or unreadable
            bad = None
        if bad is None:
            return None
        path, index, reason = bad
        return (f"{path}: record {index} cannot be read ({reason}); rewrite this shard "
                "(rerun its converter)")

    return loop.TrainHooks(
        check_run_config=lambda model: run_dir.check_run_config(config.train_logdir, model),
        write_run_config=write_run_config,
        initialize=initialize,
        write_images=image_summaries(dataset_info.colormap_array()),
        describe_data_error=describe_data_error if tfrecords else None)


def train_deeplab(config, strategy=None, dataset_fn=None, log=print):
    """Trains (or resumes) the DeepLab run of `config`; returns a `loop.TrainResult`.

    `dataset_fn` replaces the TFRecord pipeline (see `loop.train`).
    """
    info = datasets.get_dataset_info(config.dataset, config.dataset_dir)
    fresh = run_dir.latest_checkpoint(config.train_logdir) is None
    return loop.train(
        config, lambda: build_model(config, info.num_classes,
                                    config.backbone_weights if fresh else None),
        dataset_fn or default_dataset_fn(config, info), info.ignore_label, strategy,
        deeplab_hooks(config, info, tfrecords=dataset_fn is None), log)
