"""`python -m deeplab_dpc.stats`: parameters and multiply-adds of a model; the paper's Table 1.

    python -m deeplab_dpc.stats --paper_table1
    python -m deeplab_dpc.stats --model_preset=xception_71_dpc_cityscapes --crop_size=1025,2049
    python -m deeplab_dpc.stats --list_presets
    python -m deeplab_dpc.stats --dense_prediction_cell_json=cell.json --head_only
"""
from absl import flags

from deeplab_dpc import cli
from deeplab_dpc.tf_import import import_tensorflow

FLAGS = flags.FLAGS
flags.DEFINE_bool("paper_table1", False, "Print the paper's Table 1 beside our counts.")
cli.define_model_flags()
flags.DEFINE_integer("num_classes", 19, "Number of classes of the logits layer.")
flags.DEFINE_list("crop_size", ["1025", "2049"], "Input size as height,width in pixels.")
flags.DEFINE_bool("head_only", False, "Report the head alone.")
flags.DEFINE_bool("list_presets", False, "List the --model_preset names with their "
                  "parameters and multiply-adds at --crop_size.")


def main(argv):
    del argv
    options = cli.model_options(FLAGS)
    image_size = cli.parse_size(FLAGS.crop_size, "crop_size")
    import_tensorflow()  # after the flag checks; its start-up log filtered
    from deeplab_dpc.stats import complexity, report

    if FLAGS.paper_table1:
        print(report.format_paper_table1(complexity.paper_table1_rows()))
        return
    if FLAGS.list_presets:
        print(report.format_presets(complexity.preset_rows(image_size)))
        return
    from deeplab_dpc.model import DeepLab

    model = DeepLab(cli.resolved_num_classes(FLAGS), **options)
    if FLAGS.dry_run:  # stats writes nothing anyway: the dry run adds the settings
        from deeplab_dpc import dry_run

        return dry_run.show("deeplab_dpc.stats", dict(crop_size=image_size),
                            dry_run.model_facts(model, image_size))
    print(report.format_model(complexity.model_complexity(model, image_size), FLAGS.head_only))


if __name__ == "__main__":
    cli.run(main, flag_names={"backbone": "model_variant"})
