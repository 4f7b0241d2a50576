r"""`python -m deeplab_dpc.export`: exports a checkpoint as a SavedModel (and TFLite); reference flag names.

    python -m deeplab_dpc.export --checkpoint_path=runs/dpc --export_path=exported \
        [--inference_scales=0.75 --inference_scales=1 --add_flipped_images] \
        [--tflite --crop_size=513,1025]

The SavedModel's `serving_default` takes a uint8 image [H, W, 3] of any size
and returns `semantic` (int32 [H, W]) and `probabilities` (float32 [H, W, C]),
or a batch [N, H, W, 3] of one size (the reference's clients send [1, H, W, 3])
and returns [N, H, W] and [N, H, W, C]; `metadata` returns the model config (cell included), class names and colormap.
It loads with plain `tf.saved_model.load`. --tflite also writes, into
--export_path, a float and a dynamic-range quantized TFLite model of a
MobileNet-v2 checkpoint at --crop_size (input 0: the image; outputs 0, 1:
semantic, probabilities).
"""
from absl import flags

from deeplab_dpc import cli, files
from deeplab_dpc.errors import InputError
from deeplab_dpc.tf_import import import_tensorflow

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint_path", None, "Checkpoint prefix, or a run directory (latest).")
flags.DEFINE_string("export_path", None, "SavedModel directory to write (a previous one is "
                    "replaced).")
flags.DEFINE_multi_float("inference_scales", [1.0], "Input scales to average (repeat the flag).")
flags.DEFINE_bool("add_flipped_images", False, "Also average left-right flipped inputs.")
flags.DEFINE_bool("tflite", False, "Also write float and dynamic-range quantized TFLite models.")
flags.DEFINE_multi_string("crop_size", None, "TFLite input size as height,width (or the "
                          "reference's --crop_size=H --crop_size=W).")
flags.DEFINE_integer("num_classes", None, "Checked against the run's; unset: the run's.")
cli.define_model_flags()  # checked against the run's network, as in eval
for _name in ("min_resize_value", "max_resize_value", "resize_factor"):
    cli.define_accepted(_name, None, "integer", "the SavedModel predicts each image at its "
                        "own size: resize before sending it")
cli.define_accepted("save_inference_graph", False, "bool", "the SavedModel holds the graph")


def main(argv):
    del argv
    cli.require(FLAGS, "checkpoint_path", "export_path")
    files.check_output_dir(FLAGS.export_path, "export_path")
    checkpoint = cli.reference_checkpoint(FLAGS.checkpoint_path, "checkpoint_path")
    if not FLAGS.dry_run:
        cli.existing_path(checkpoint, "checkpoint_path")
    crop = cli.parse_size(FLAGS.crop_size, "crop_size")
    if crop and not FLAGS.tflite:
        cli.note("--crop_size only sizes the TFLite model; the SavedModel takes any size")
    options = cli.model_options(FLAGS)  # the model flags' own checks, before TensorFlow
    import_tensorflow()  # after the flag checks; its start-up log filtered
    from deeplab_dpc import run_dir
    from deeplab_dpc.export import saved_model, tflite
    from deeplab_dpc.predict.inference import check_scales
    from deeplab_dpc.predict.serving import ServingModule

    scales = check_scales(FLAGS.inference_scales)
    run = cli.run_model_config(FLAGS, checkpoint, options)  # None: no run yet
    if run is not None and FLAGS.num_classes is not None and \
            FLAGS.num_classes != run["model"]["num_classes"]:
        raise InputError(f"--num_classes={FLAGS.num_classes} does not match {checkpoint}, "
                         f"which predicts {run['model']['num_classes']} classes")
    if FLAGS.dry_run:
        settings = dict(checkpoint_path=checkpoint, export_path=FLAGS.export_path,
                        inference_scales=list(scales), tflite=FLAGS.tflite, crop_size=crop)
        return cli.reader_dry_run("deeplab_dpc.export", FLAGS, checkpoint, run, settings,
                                  image_size=crop, num_classes=FLAGS.num_classes,
                                  options=options)
    saved_model.check_export_path(FLAGS.export_path)
    run = run or run_dir.read_deeplab_config(checkpoint)
    if FLAGS.tflite:  # refused from the config alone, before any weights are read
        tflite.check_tflite(run["model"], crop)
    model, info = run_dir.load_model(checkpoint)
    module = ServingModule(model, info, scales, FLAGS.add_flipped_images)
    print(f"exporting {checkpoint} (scales {list(scales)}"
          f"{', flipped' if FLAGS.add_flipped_images else ''}) ...", flush=True)
    print(f"wrote SavedModel {saved_model.export_saved_model(module, FLAGS.export_path)}",
          flush=True)
    if FLAGS.tflite:
        for path in tflite.export_tflite(module, crop, FLAGS.export_path):
            print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    cli.run(main, flag_names={"backbone": "model_variant"})
