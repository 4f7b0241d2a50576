r"""`python -m deeplab_dpc.predict`: segments your own images, of any size, with a checkpoint or an exported SavedModel.

    python -m deeplab_dpc.predict --checkpoint_dir=runs/dpc --image_glob='photos/*.jpg' \
        --output_dir=segmented
    python -m deeplab_dpc.predict --saved_model_dir=exported --image_glob=... --output_dir=...

For each image `name.ext` writes `name.png` (class ids, 8-bit; 16-bit past 255
classes) and `name_color.png` (the model's colormap). Images are decoded as
training decodes them (`data.images`: grey, palette, RGBA and CMYK as RGB,
16-bit scaled to 8); EXIF orientation is applied first, as photo viewers do.
"""
import os

from absl import flags

from deeplab_dpc import cli, files
from deeplab_dpc.tf_import import import_tensorflow
from deeplab_dpc.errors import InputError

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint_dir", None, "Training run directory or checkpoint prefix.")
flags.DEFINE_string("saved_model_dir", None, "Or: a SavedModel written by deeplab_dpc.export.")
flags.DEFINE_string("image_glob", None, "Images to segment, e.g. 'photos/*.jpg'.")
flags.DEFINE_string("output_dir", None, "Where the PNGs go.")
flags.DEFINE_multi_float("inference_scales", [1.0],
                         "With --checkpoint_dir: input scales to average (repeat the flag).")
flags.DEFINE_bool("add_flipped_images", False,
                  "With --checkpoint_dir: also average left-right flipped inputs.")


def _dry_run(tf):
    """The model that would segment the images (from the run, or the SavedModel's
    config), costed at the first image's size."""
    import json

    from deeplab_dpc import dry_run
    from deeplab_dpc.data import images

    paths = sorted(tf.io.gfile.glob(FLAGS.image_glob))
    size = images.read_image(paths[0]).shape[:2] if paths else None
    settings = dict(image_glob=FLAGS.image_glob, images=len(paths), output_dir=FLAGS.output_dir,
                    inference_scales=FLAGS.inference_scales,
                    add_flipped_images=FLAGS.add_flipped_images)
    if FLAGS.checkpoint_dir:
        return cli.reader_dry_run("deeplab_dpc.predict", FLAGS, FLAGS.checkpoint_dir,
                                  cli.run_model_config(FLAGS, FLAGS.checkpoint_dir),
                                  dict(settings, checkpoint_dir=FLAGS.checkpoint_dir),
                                  image_size=size)
    from deeplab_dpc.model import DeepLab

    loaded = tf.saved_model.load(FLAGS.saved_model_dir)
    model = DeepLab.from_config(json.loads(loaded.model_config_json.numpy()))
    return dry_run.show("deeplab_dpc.predict",
                        dict(settings, saved_model_dir=FLAGS.saved_model_dir),
                        dry_run.model_facts(model, size),
                        notes=[] if paths else [f"--image_glob {FLAGS.image_glob} "
                                                "matches no file yet"])


def main(argv):
    del argv
    cli.require(FLAGS, "image_glob", "output_dir")
    files.check_output_dir(FLAGS.output_dir, "output_dir")
    if bool(FLAGS.checkpoint_dir) == bool(FLAGS.saved_model_dir):
        raise InputError("give exactly one of --checkpoint_dir and --saved_model_dir")
    if FLAGS.checkpoint_dir and not FLAGS.dry_run:
        cli.existing_path(FLAGS.checkpoint_dir, "checkpoint_dir")
    tf = import_tensorflow()
    if FLAGS.dry_run:
        return _dry_run(tf)

    from deeplab_dpc.data import images
    from deeplab_dpc.predict.serving import Segmenter
    from deeplab_dpc.vis import render

    paths = sorted(tf.io.gfile.glob(FLAGS.image_glob))
    if not paths:
        raise InputError(f"--image_glob {FLAGS.image_glob} matches no file")
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(stems)) < len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise InputError(f"--image_glob matches several images named {dup!r}; their outputs "
                         "would overwrite each other")
    if FLAGS.saved_model_dir:
        segmenter = Segmenter.from_saved_model(FLAGS.saved_model_dir)
    else:
        segmenter = Segmenter.from_checkpoint(FLAGS.checkpoint_dir, FLAGS.inference_scales,
                                              FLAGS.add_flipped_images)
    for i, (path, stem) in enumerate(zip(paths, stems), 1):
        labels = segmenter.predict(images.read_image(path, exif_transpose=True))
        out = os.path.join(FLAGS.output_dir, stem)
        render.write_png(out + ".png", render.label_image(labels))
        render.write_png(out + "_color.png", segmenter.colorize(labels))
        print(f"[{i}/{len(paths)}] {path} -> {out}.png", flush=True)


if __name__ == "__main__":
    cli.run(main)
