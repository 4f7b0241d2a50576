"""`python -m deeplab_dpc.stats`: parameters and multiply-adds of a model; the paper's Table 1.

    python -m deeplab_dpc.stats --paper_table1
    python -m deeplab_dpc.stats --model_variant=xception_71 --crop_size=1025,2049
    python -m deeplab_dpc.stats --dense_prediction_cell_json=cell.json --head_only
"""
from absl import flags

from deeplab_dpc import cli
from deeplab_dpc.tf_import import import_tensorflow

FLAGS = flags.FLAGS
flags.DEFINE_bool("paper_table1", False, "Print the paper's Table 1 beside our counts.")
flags.DEFINE_string("model_variant", "mobilenet_v2",
                    "Backbone: mobilenet_v2, xception_41, xception_65 or xception_71.")
flags.DEFINE_string("dense_prediction_cell_json", None,
                    "Cell JSON file (reference format); empty with --head=aspp.")
flags.DEFINE_enum("head", "dpc", ["dpc", "aspp"], "Head: the DPC or the ASPP baseline.")
flags.DEFINE_multi_integer("atrous_rates", [6, 12, 18], "ASPP atrous rates (repeat the flag).")
flags.DEFINE_integer("output_stride", 16, "Backbone output stride: 8, 16 or 32.")
flags.DEFINE_integer("decoder_output_stride", None, "4 to add the decoder.")
flags.DEFINE_float("depth_multiplier", 1.0, "MobileNet-v2 depth multiplier.")
flags.DEFINE_integer("num_classes", 19, "Number of classes of the logits layer.")
flags.DEFINE_list("crop_size", ["1025", "2049"], "Input size as height,width in pixels.")
flags.DEFINE_bool("head_only", False, "Report the head alone.")


def main(argv):
    del argv
    import_tensorflow()  # after the flag checks; its start-up log filtered
    from deeplab_dpc.stats import complexity, report

    if FLAGS.paper_table1:
        print(report.format_paper_table1(complexity.paper_table1_rows()))
        return
    cell = None
    if FLAGS.dense_prediction_cell_json:
        from deeplab_dpc.spec import CellSpec
        cell = CellSpec.from_file(FLAGS.dense_prediction_cell_json)
    from deeplab_dpc.model import DeepLab

    image_size = cli.parse_size(FLAGS.crop_size, "crop_size")
    model = DeepLab(
        FLAGS.num_classes, backbone=FLAGS.model_variant, head=FLAGS.head, cell=cell,
        atrous_rates=FLAGS.atrous_rates, output_stride=FLAGS.output_stride,
        decoder_output_stride=FLAGS.decoder_output_stride,
        depth_multiplier=FLAGS.depth_multiplier)
    print(report.format_model(complexity.model_complexity(model, image_size), FLAGS.head_only))


if __name__ == "__main__":
    cli.run(main, flag_names={"backbone": "model_variant"})
