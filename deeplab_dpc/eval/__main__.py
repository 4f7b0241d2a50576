r"""`python -m deeplab_dpc.eval`: a run's checkpoints' mIOU over a split; reference flags.

    python -m deeplab_dpc.eval --checkpoint_dir=runs/dpc --eval_logdir=runs/dpc/eval \
        --max_number_of_evaluations=1 [--eval_scales=0.75 --eval_scales=1 --add_flipped_images]

Writes `eval_logdir/metrics.json` (replaced atomically after each evaluation)
and TensorBoard scalars. The model and, by default, the dataset come from the
run directory. With --max_number_of_evaluations=0 it follows the run, evaluating
each new checkpoint, and stops after the run's last step.
"""
from absl import flags

from deeplab_dpc import cli, files
from deeplab_dpc.tf_import import import_tensorflow
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
cli.define_resize_flags()
# The network is the run's (cell included); model flags, as the reference's eval
# command lines give them, are checked against it.
cli.define_model_flags()


def main(argv):
    del argv
    cli.require(FLAGS, "checkpoint_dir", "eval_logdir")
    files.check_output_dir(FLAGS.eval_logdir, "eval_logdir")
    if not FLAGS.dry_run:
        cli.existing_path(FLAGS.checkpoint_dir, "checkpoint_dir")
    crop = cli.parse_size(FLAGS.eval_crop_size, "eval_crop_size")
    if FLAGS.eval_batch_size < 1:
        raise InputError("--eval_batch_size must be >= 1")
    options = cli.model_options(FLAGS)  # the model flags' own checks, before TensorFlow
    import_tensorflow()  # after the flag checks; its start-up log filtered
    run = cli.run_model_config(FLAGS, FLAGS.checkpoint_dir, options)  # None: no run yet
    settings = dict(checkpoint_dir=FLAGS.checkpoint_dir, eval_logdir=FLAGS.eval_logdir,
                    eval_split=FLAGS.eval_split, eval_crop_size=crop,
                    eval_batch_size=FLAGS.eval_batch_size, eval_scales=FLAGS.eval_scales,
                    add_flipped_images=FLAGS.add_flipped_images, **cli.resize_options(FLAGS))
    if FLAGS.dry_run:
        return cli.reader_dry_run("deeplab_dpc.eval", FLAGS, FLAGS.checkpoint_dir, run, settings,
                                  FLAGS.eval_split, crop, resize=cli.resize_options(FLAGS))
    from deeplab_dpc.eval import evaluator

    for report, path in evaluator.evaluate_run(
            FLAGS.checkpoint_dir, FLAGS.eval_logdir, dataset=FLAGS.dataset,
            dataset_dir=FLAGS.dataset_dir, eval_split=FLAGS.eval_split, crop_size=crop,
            batch_size=FLAGS.eval_batch_size, scales=FLAGS.eval_scales,
            add_flipped_images=FLAGS.add_flipped_images,
            interval_secs=FLAGS.eval_interval_secs,
            max_evaluations=FLAGS.max_number_of_evaluations,
            resize=cli.resize_options(FLAGS)):
        print(evaluator.format_report(report))
        print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    cli.run(main, flag_names={"backbone": "model_variant"})
