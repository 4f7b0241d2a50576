"""Evaluating checkpoints of a training run on a split: the library behind `eval` and `vis`.

A run directory (`train_logdir`) says everything: its `model_config.json`
rebuilds the model and names the dataset it was trained on, so eval needs no
model flags and, by default, no dataset flags either.
"""
import os

import numpy as np
import tensorflow as tf

from deeplab_dpc import files, run_dir
from deeplab_dpc.data import datasets
from deeplab_dpc.data import input_pipeline as ip
from deeplab_dpc.errors import InputError
from deeplab_dpc.eval import metrics
from deeplab_dpc.predict.inference import check_scales, predict_labels
from deeplab_dpc.progress import Progress

METRICS_FILE = "metrics.json"


def resolve_dataset(run_config, dataset=None, dataset_dir=None):
    """(dataset_dir, DatasetInfo) of the data to evaluate on: the flags, or else the
    dataset the run was trained on."""
    train = run_config.get("train", {})
    dataset = dataset or train.get("dataset") or run_config["dataset"]["name"]
    dataset_dir = dataset_dir or train.get("dataset_dir")
    if not dataset_dir:
        raise InputError(f"dataset_dir is required: the run does not say where "
                         f"{dataset!r} lives", param="dataset_dir")
    if "://" not in dataset_dir and not os.path.isdir(dataset_dir):
        raise InputError(f"dataset_dir {dataset_dir}: no such directory", param="dataset_dir")
    return dataset_dir, datasets.get_dataset_info(dataset, dataset_dir)


RESIZE_FIELDS = ("min_resize_value", "max_resize_value", "resize_factor")


def run_resize(run_config, **given):
    """The resize-to-range settings to evaluate with: those `given` (not None), else
    the run's training settings, as the reference's eval repeats its train flags."""
    train = run_config.get("train", {})
    return {k: given[k] if given.get(k) is not None else train.get(k) for k in RESIZE_FIELDS}


def split_dataset(dataset_dir, split, info, crop_size=None, batch_size=1, resize=None):
    """The split's examples in file order, unaugmented: resized to a range (`resize`,
    `RESIZE_FIELDS`) and padded to `crop_size` if given."""
    return ip.build_dataset(os.path.join(dataset_dir, f"{split}-*"), is_training=False,
                            batch_size=batch_size, crop_size=crop_size,
                            ignore_label=info.ignore_label, repeat=False, **(resize or {}))


def check_classes(model, info, where):
    if model.num_classes != info.num_classes:
        raise InputError(f"the model predicts {model.num_classes} classes but {where} has "
                         f"{info.num_classes}")


def confusion_over_split(model, dataset, num_classes, ignore_label, scales=(1.0,),
                         add_flipped_images=False, split="eval", total=None, progress=True):
    """(int64 [C, C] confusion matrix summed over the split, number of images).

    A label outside [0, C) other than the ignore label stops it with an
    InputError naming the split and the image: a dataset written for another
    class count would otherwise give a silently wrong mIOU.
    """
    scales = check_scales(scales)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32),
                                  tf.TensorSpec([None, None, None, 1], tf.int32)])
    def step(images, labels):
        predictions = predict_labels(model, images, scales, add_flipped_images)
        labels = labels[..., 0]
        return (metrics.confusion_matrix(labels, predictions, num_classes, ignore_label),
                metrics.invalid_labels(labels, num_classes, ignore_label))

    matrix, count = np.zeros((num_classes, num_classes), np.int64), 0
    bar = Progress(total, split, enabled=progress)
    try:
        for batch in dataset:
            batch_matrix, invalid = step(batch[ip.IMAGE], batch[ip.LABEL])
            invalid = invalid.numpy()
            if (invalid >= 0).any():
                i = int(np.argmax(invalid >= 0))
                name = batch[ip.FILENAME][i].numpy().decode() or f"image {count + i}"
                raise InputError(
                    f"{split} split: {name} has label {invalid[i]}, outside [0, {num_classes}) "
                    f"and not the ignore label {ignore_label}")
            matrix += batch_matrix.numpy()
            count += len(invalid)
            bar.update(len(invalid))
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
        raise InputError(f"{split} split: cannot read an example after {count} images: "
                         f"{' '.join(e.message.split())[:200]}") from None
    finally:
        bar.close()
    if not count:
        raise InputError(f"{split} split has no examples")
    return matrix, count


def _finite_or_none(value):
    return None if np.isnan(value) else float(value)


def metrics_report(matrix, class_names, **context):
    """The metrics.json content: mIOU, per-class IoU by class name (null for classes
    absent from labels and predictions, which the mean leaves out), pixel accuracy,
    the confusion matrix, and `context` (step, checkpoint, split, scales, ...)."""
    names = list(class_names) or [f"class_{i}" for i in range(len(matrix))]
    iou = metrics.per_class_iou(matrix)
    return {
        "miou": _finite_or_none(metrics.mean_iou(matrix)),
        "per_class_iou": {n: _finite_or_none(v) for n, v in zip(names, iou)},
        "pixel_accuracy": _finite_or_none(metrics.pixel_accuracy(matrix)),
        **context,
        "absent_classes": "IoU null and left out of miou",
        "confusion_matrix": np.asarray(matrix).tolist(),  # rows: labels, columns: predictions
    }


def write_summaries(writer, report):
    """TensorBoard scalars `miou`, `pixel_accuracy`, `iou/<class>` at the checkpoint's step."""
    scalars = [("miou", report["miou"]), ("pixel_accuracy", report["pixel_accuracy"])] + [
        (f"iou/{c.replace(' ', '_')}", v) for c, v in report["per_class_iou"].items()]
    with writer.as_default():
        for name, value in scalars:
            if value is not None:  # absent classes have no IoU to plot
                tf.summary.scalar(name, value, report["step"])
    writer.flush()


def format_report(report):
    """mIOU and per-class IoU of a metrics report, as lines for a terminal."""
    miou = report["miou"]
    lines = [f"step {report['step']}: mIOU {'n/a' if miou is None else f'{100 * miou:.2f}%'} "
             f"over {report['num_images']} images of {report['eval_split']}"]
    for name, iou in report["per_class_iou"].items():
        lines.append(f"  {name:<20} {'absent' if iou is None else f'{100 * iou:6.2f}%'}")
    return "\n".join(lines)


def evaluate_run(checkpoint_dir, eval_logdir, dataset=None, dataset_dir=None,
                 eval_split="val", crop_size=None, batch_size=1, scales=(1.0,),
                 add_flipped_images=False, interval_secs=300, max_evaluations=0, log=None,
                 resize=None):
    """Evaluates a run's checkpoints (see `run_dir.follow_checkpoints` for which);
    yields (report, metrics.json path) per checkpoint. The model and, by default,
    the dataset (and the resize to a range, see `run_resize`) come from the run
    directory. Summaries go to `eval_logdir`, whose
    events file is created only once the first evaluation succeeded."""
    log = log or (lambda line: print(line, flush=True))
    scales = check_scales(scales)
    run = run_dir.read_deeplab_config(checkpoint_dir)
    dataset_dir, info = resolve_dataset(run, dataset, dataset_dir)
    resize = run_resize(run, **(resize or {}))
    writer = None
    prefixes = run_dir.follow_checkpoints(
        checkpoint_dir, interval_secs, max_evaluations,
        run.get("train", {}).get("training_number_of_steps"), log=log)
    for prefix, model, run_info in run_dir.restored_models(prefixes):
        check_classes(model, info, f"dataset {info.name!r}")
        step = run_dir.checkpoint_step(prefix)
        log(f"evaluating {prefix} (step {step}) on {info.name} {eval_split}, scales "
            f"{list(scales)}{', flipped' if add_flipped_images else ''}")
        data = split_dataset(dataset_dir, eval_split, info, crop_size, batch_size, resize)
        matrix, count = confusion_over_split(
            model, data, info.num_classes, info.ignore_label, scales, add_flipped_images,
            eval_split, total=info.splits.get(eval_split))
        report = metrics_report(
            matrix, run_info.class_names or info.class_names, step=step, checkpoint=prefix,
            dataset=info.name, eval_split=eval_split, eval_scales=list(scales),
            add_flipped_images=add_flipped_images,
            eval_crop_size=list(crop_size) if crop_size else None, num_images=count)
        path = files.write_json_atomically(os.path.join(eval_logdir, METRICS_FILE), report)
        if writer is None:
            writer = tf.summary.create_file_writer(eval_logdir)
        write_summaries(writer, report)
        yield report, path
