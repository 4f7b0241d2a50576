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


def main(argv):
    del argv
    cli.require(FLAGS, "tf1_checkpoint", "output_dir")
    files.check_output_dir(FLAGS.output_dir, "output_dir")
    cli.existing_path(FLAGS.tf1_checkpoint, "tf1_checkpoint")
    options = cli.model_options(FLAGS)
    import_tensorflow()  # after the flag checks; its start-up log filtered
    from deeplab_dpc.import_tf1_checkpoint import run_directory

    report = run_directory.import_checkpoint(
        FLAGS.tf1_checkpoint, options, FLAGS.output_dir, num_classes=FLAGS.num_classes,
        dataset=FLAGS.dataset, dataset_dir=FLAGS.dataset_dir)
    print(report.summary())
    print(f"wrote {FLAGS.output_dir} (report: tf1_import.json)", flush=True)


if __name__ == "__main__":
    cli.run(main, flag_names={"backbone": "model_variant"})
