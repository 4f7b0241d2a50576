r"""`python -m deeplab_dpc.import_tf1_checkpoint`: a reference TF1 checkpoint as a run directory.

    python -m deeplab_dpc.import_tf1_checkpoint \
        --tf1_checkpoint=deeplab_cityscapes_xception71_trainfine/model.ckpt \
        --model_variant=xception_71 --output_stride=16 --decoder_output_stride=4 \
        --dense_prediction_cell_json=dense_prediction_cell_branch5_top1_cityscapes.json \
        --dataset=cityscapes --output_dir=runs/xception71_dpc_cityscapes

The model flags are the reference's and must describe the model the checkpoint
holds (as for the reference's eval): with --dense_prediction_cell_json the head
is that cell, else ASPP. The output directory takes eval, vis, predict and export
like a training run, and `--tf_initial_checkpoint` of training. The report
(`tf1_import.json` in it) lists what was used, left unused and left unset.
"""
import os

from absl import flags

from deeplab_dpc import cli, files
from deeplab_dpc.tf_import import import_tensorflow

FLAGS = flags.FLAGS
flags.DEFINE_string("tf1_checkpoint", None, "Reference checkpoint: prefix (model.ckpt) "
                    "or its folder.")
flags.DEFINE_string("output_dir", None, "Run directory to write (new or empty).")
cli.define_model_flags()
flags.DEFINE_integer("num_classes", None, "Classes; unset: the dataset's, else the logits'.")
flags.DEFINE_string("dataset", None, "Dataset name (class names, colormap, ignore label).")
flags.DEFINE_string("dataset_dir", None, "TFRecords whose dataset_info.json to use; eval "
                    "reads them by default.")


def _dry_run(options):
    """The network the flags describe, with the class count of the checkpoint where it
    is there (else of --num_classes or --dataset); nothing read into it."""
    from deeplab_dpc import dry_run
    from deeplab_dpc.data import datasets
    from deeplab_dpc.import_tf1_checkpoint import converter
    from deeplab_dpc.model import DeepLab

    notes, classes = [], cli.resolved_num_classes(FLAGS)
    if classes is None and (FLAGS.dataset or FLAGS.dataset_dir):
        classes = datasets.get_dataset_info(FLAGS.dataset, FLAGS.dataset_dir).num_classes
    if os.path.exists(FLAGS.tf1_checkpoint) or os.path.exists(FLAGS.tf1_checkpoint + ".index"):
        _, reader = converter.open_tf1_checkpoint(FLAGS.tf1_checkpoint)  # a TF2 one: refused
        classes = classes or converter.num_classes(reader)
    else:
        notes.append(f"--tf1_checkpoint {FLAGS.tf1_checkpoint} is not there: nothing checked "
                     "against it")
    if classes is None:
        classes = datasets.REGISTRY[cli.REFERENCE_DATASET].num_classes
        notes.append(f"no class count given: {classes}, the reference's default dataset's")
    return dry_run.show(
        "deeplab_dpc.import_tf1_checkpoint",
        dict(tf1_checkpoint=FLAGS.tf1_checkpoint, output_dir=FLAGS.output_dir,
             dataset=FLAGS.dataset, dataset_dir=FLAGS.dataset_dir),
        dry_run.model_facts(DeepLab(classes, **options)), notes=notes)


def main(argv):
    del argv
    cli.require(FLAGS, "tf1_checkpoint", "output_dir")
    files.check_output_dir(FLAGS.output_dir, "output_dir")
    if not FLAGS.dry_run:
        cli.existing_path(FLAGS.tf1_checkpoint, "tf1_checkpoint")
    options = cli.model_options(FLAGS)
    import_tensorflow()  # after the flag checks; its start-up log filtered
    if FLAGS.dry_run:
        return _dry_run(options)
    from deeplab_dpc.import_tf1_checkpoint import run_directory

    report = run_directory.import_checkpoint(
        FLAGS.tf1_checkpoint, options, FLAGS.output_dir,
        num_classes=cli.resolved_num_classes(FLAGS),
        dataset=FLAGS.dataset, dataset_dir=FLAGS.dataset_dir)
    print(report.summary())
    print(f"wrote {FLAGS.output_dir} (report: tf1_import.json)", flush=True)


if __name__ == "__main__":
    cli.run(main, flag_names={"backbone": "model_variant"})
