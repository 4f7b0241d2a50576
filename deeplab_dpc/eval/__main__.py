r"""`python -m deeplab_dpc.eval`: evaluates a training run's checkpoints: mIOU over a split; reference flag names.

    python -m deeplab_dpc.eval --checkpoint_dir=runs/dpc --eval_logdir=runs/dpc/eval \
        --max_number_of_evaluations=1 [--eval_scales=0.75 --eval_scales=1 --add_flipped_images]

Writes `eval_logdir/metrics.json` (replaced atomically after each evaluation)
and TensorBoard scalars. The model and, by default, the dataset come from the
run directory. With --max_number_of_evaluations=0 it follows the run, evaluating
each new checkpoint, and stops after the run's last step.
"""
import os

from absl import flags

from deeplab_dpc import cli
from deeplab_dpc.errors import InputError

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint_dir", None, "Training run directory, or one checkpoint prefix.")
flags.DEFINE_string("eval_logdir", None, "Where metrics.json and summaries go.")
flags.DEFINE_string("dataset", None, "Dataset name; unset: the run's.")
flags.DEFINE_string("dataset_dir", None, "Directory of TFRecords; unset: the run's.")
flags.DEFINE_string("eval_split", "val", "Split whose shards to evaluate.")
flags.DEFINE_list("eval_crop_size", None, "Pad every image to height,width; unset: as is.")
flags.DEFINE_integer("eval_batch_size", 1, "Images per batch (>1 needs one image size).")
flags.DEFINE_multi_float("eval_scales", [1.0], "Input scales to average (repeat the flag).")
flags.DEFINE_bool("add_flipped_images", False, "Also average left-right flipped inputs.")
flags.DEFINE_integer("max_number_of_evaluations", 0,
                     "Checkpoints to evaluate; 0 = each new one until the run's last step.")
flags.DEFINE_integer("eval_interval_secs", 300, "Seconds between looks for a new checkpoint.")


def _print_report(report):
    miou = report["miou"]
    print(f"step {report['step']}: mIOU {'n/a' if miou is None else f'{100 * miou:.2f}%'} "
          f"over {report['num_images']} images of {report['eval_split']}")
    for name, iou in report["per_class_iou"].items():
        print(f"  {name:<20} {'absent' if iou is None else f'{100 * iou:6.2f}%'}")


def main(argv):
    del argv
    cli.require(FLAGS, "checkpoint_dir", "eval_logdir")
    cli.existing_path(FLAGS.checkpoint_dir, "checkpoint_dir")
    crop = cli.parse_size(FLAGS.eval_crop_size, "eval_crop_size")
    if FLAGS.eval_batch_size < 1:
        raise InputError("--eval_batch_size must be >= 1")
    import tensorflow as tf  # after the flags are checked: a bad flag answers at once

    from deeplab_dpc import files, run_dir
    from deeplab_dpc.eval import evaluator
    from deeplab_dpc.predict.inference import check_scales

    scales = check_scales(FLAGS.eval_scales)
    run = run_dir.read_run_config(run_dir.run_dir(FLAGS.checkpoint_dir))
    dataset_dir, info = evaluator.resolve_dataset(run, FLAGS.dataset, FLAGS.dataset_dir)
    split = FLAGS.eval_split
    tf.io.gfile.makedirs(FLAGS.eval_logdir)
    writer = tf.summary.create_file_writer(FLAGS.eval_logdir)
    prefixes = evaluator.follow_checkpoints(
        FLAGS.checkpoint_dir, FLAGS.eval_interval_secs, FLAGS.max_number_of_evaluations,
        run.get("train", {}).get("training_number_of_steps"))
    for prefix, model, run_info in evaluator.restored_models(prefixes):
        evaluator.check_classes(model, info, f"dataset {info.name!r}")
        step = evaluator.checkpoint_step(prefix)
        print(f"evaluating {prefix} (step {step}) on {info.name} {split}, scales "
              f"{list(scales)}{', flipped' if FLAGS.add_flipped_images else ''}", flush=True)
        dataset = evaluator.split_dataset(dataset_dir, split, info, crop, FLAGS.eval_batch_size)
        matrix, count = evaluator.confusion_over_split(
            model, dataset, info.num_classes, info.ignore_label, scales,
            FLAGS.add_flipped_images, split, total=info.splits.get(split))
        report = evaluator.metrics_report(
            matrix, run_info.class_names or info.class_names, step=step, checkpoint=prefix,
            dataset=info.name, eval_split=split, eval_scales=list(scales),
            add_flipped_images=FLAGS.add_flipped_images,
            eval_crop_size=list(crop) if crop else None, num_images=count)
        path = files.write_json_atomically(
            os.path.join(FLAGS.eval_logdir, evaluator.METRICS_FILE), report)
        evaluator.write_summaries(writer, report)
        _print_report(report)
        print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    cli.run(main)
