r"""`python -m deeplab_dpc.vis`: visualises a run's predictions on a split; reference flag names.

    python -m deeplab_dpc.vis --checkpoint_dir=runs/dpc --vis_logdir=runs/dpc/vis \
        --max_number_of_iterations=1 [--also_save_raw_predictions] [--colormap_type=cityscapes]

Writes `vis_logdir/segmentation_results/{i:06d}_{image,prediction,overlay}.png`
and, with --also_save_raw_predictions, `vis_logdir/raw_segmentation_results/
{image filename}.png` holding class ids; for Cityscapes these are the label ids
the benchmark server expects (train id -> label id). Each new checkpoint
overwrites the previous one's images, as in the reference.
"""
import os

from absl import flags

from deeplab_dpc import cli
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


def main(argv):
    del argv
    cli.require(FLAGS, "checkpoint_dir", "vis_logdir")
    cli.existing_path(FLAGS.checkpoint_dir, "checkpoint_dir")
    import tensorflow as tf

    from deeplab_dpc import run_dir
    from deeplab_dpc.data import input_pipeline as ip
    from deeplab_dpc.eval import evaluator
    from deeplab_dpc.predict.inference import check_scales, predict_labels
    from deeplab_dpc.progress import Progress
    from deeplab_dpc.vis import render as vis

    scales = check_scales(FLAGS.eval_scales)
    run = run_dir.read_run_config(run_dir.run_dir(FLAGS.checkpoint_dir))
    dataset_dir, info = evaluator.resolve_dataset(run, FLAGS.dataset, FLAGS.dataset_dir)
    cmap = vis.colormap(FLAGS.colormap_type, info)
    results = os.path.join(FLAGS.vis_logdir, "segmentation_results")
    raw_results = os.path.join(FLAGS.vis_logdir, "raw_segmentation_results")
    prefixes = evaluator.follow_checkpoints(
        FLAGS.checkpoint_dir, FLAGS.eval_interval_secs, FLAGS.max_number_of_iterations,
        run.get("train", {}).get("training_number_of_steps"))
    for prefix, model, _ in evaluator.restored_models(prefixes):
        evaluator.check_classes(model, info, f"dataset {info.name!r}")
        predict = tf.function(
            lambda images: predict_labels(model, images, scales, FLAGS.add_flipped_images),
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        print(f"visualising {prefix} on {info.name} {FLAGS.vis_split}", flush=True)
        count, bar = 0, Progress(info.splits.get(FLAGS.vis_split), FLAGS.vis_split)
        for i, example in enumerate(evaluator.split_dataset(dataset_dir, FLAGS.vis_split, info)):
            labels = predict(example[ip.IMAGE])[0].numpy()
            image = example[ip.IMAGE][0].numpy().astype("uint8")
            colored = vis.colorize(labels, cmap)
            for kind, array in (("image", image), ("prediction", colored),
                                ("overlay", vis.overlay(image, colored))):
                vis.write_png(os.path.join(results, f"{i:06d}_{kind}.png"), array)
            if FLAGS.also_save_raw_predictions:
                name = os.path.basename(example[ip.FILENAME][0].numpy().decode()) or f"{i:06d}"
                vis.write_png(os.path.join(raw_results, os.path.splitext(name)[0] + ".png"),
                              vis.label_image(vis.raw_prediction(labels, info.name)))
            count = i + 1
            bar.update()
        bar.close()
        print(f"wrote {count} visualisations to {results}", flush=True)


if __name__ == "__main__":
    cli.run(main)
