r"""`python -m deeplab_dpc.vis`: visualises a run's predictions on a split; reference flag names.

    python -m deeplab_dpc.vis --checkpoint_dir=runs/dpc --vis_logdir=runs/dpc/vis \
        --max_number_of_iterations=1 [--also_save_raw_predictions] [--colormap_type=cityscapes]

Writes `vis_logdir/segmentation_results/{i:06d}_{image,prediction,overlay}.png`
and, with --also_save_raw_predictions, `vis_logdir/raw_segmentation_results/
{image filename}.png` holding class ids; for Cityscapes these are the label ids
the benchmark server expects (train id -> label id). Each new checkpoint
overwrites the previous one's images, as in the reference.
"""
from absl import flags

from deeplab_dpc import cli, files
from deeplab_dpc.tf_import import import_tensorflow
from deeplab_dpc.vis.render import COLORMAP_TYPES

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint_dir", None, "Training run directory, or one checkpoint prefix.")
flags.DEFINE_string("vis_logdir", None, "Where the PNGs go.")
flags.DEFINE_string("dataset", None, "Dataset name; unset: the run's.")
flags.DEFINE_string("dataset_dir", None, "Directory of TFRecords; unset: the run's.")
flags.DEFINE_string("vis_split", "val", "Split whose shards to visualise.")
flags.DEFINE_multi_float("eval_scales", [1.0], "Input scales to average (repeat the flag).")
flags.DEFINE_bool("add_flipped_images", False, "Also average left-right flipped inputs.")
flags.DEFINE_enum("colormap_type", None, list(COLORMAP_TYPES),
                  "Palette; unset: the dataset's own.")
flags.DEFINE_bool("also_save_raw_predictions", False, "Also write class-id PNGs.")
flags.DEFINE_integer("max_number_of_iterations", 0,
                     "Checkpoints to visualise; 0 = each new one until the run's last step.")
flags.DEFINE_integer("eval_interval_secs", 300, "Seconds between looks for a new checkpoint.")
cli.define_resize_flags()
cli.define_model_flags()  # checked against the run's network, as in eval
cli.define_accepted("vis_crop_size", None, "list", "each image is predicted at its own "
                    "size (eval's --eval_crop_size pads to a fixed one)")
cli.define_accepted("vis_batch_size", 1, "integer", "vis predicts one image at a time")


def main(argv):
    del argv
    cli.require(FLAGS, "checkpoint_dir", "vis_logdir")
    files.check_output_dir(FLAGS.vis_logdir, "vis_logdir")
    if not FLAGS.dry_run:
        cli.existing_path(FLAGS.checkpoint_dir, "checkpoint_dir")
    options = cli.model_options(FLAGS)  # the model flags' own checks, before TensorFlow
    import_tensorflow()  # after the flag checks; its start-up log filtered
    run = cli.run_model_config(FLAGS, FLAGS.checkpoint_dir, options)  # None: no run yet
    if FLAGS.dry_run:
        settings = dict(checkpoint_dir=FLAGS.checkpoint_dir, vis_logdir=FLAGS.vis_logdir,
                        vis_split=FLAGS.vis_split, eval_scales=FLAGS.eval_scales,
                        add_flipped_images=FLAGS.add_flipped_images,
                        colormap_type=FLAGS.colormap_type, **cli.resize_options(FLAGS))
        return cli.reader_dry_run("deeplab_dpc.vis", FLAGS, FLAGS.checkpoint_dir, run, settings,
                                  FLAGS.vis_split, resize=cli.resize_options(FLAGS))
    from deeplab_dpc.vis import visualizer

    for _ in visualizer.visualize_run(
            FLAGS.checkpoint_dir, FLAGS.vis_logdir, dataset=FLAGS.dataset,
            dataset_dir=FLAGS.dataset_dir, vis_split=FLAGS.vis_split, scales=FLAGS.eval_scales,
            add_flipped_images=FLAGS.add_flipped_images, colormap_type=FLAGS.colormap_type,
            also_save_raw_predictions=FLAGS.also_save_raw_predictions,
            interval_secs=FLAGS.eval_interval_secs,
            max_iterations=FLAGS.max_number_of_iterations, resize=cli.resize_options(FLAGS)):
        pass


if __name__ == "__main__":
    cli.run(main, flag_names={"backbone": "model_variant"})
