"""`python -m deeplab_dpc.stats`: parameters and multiply-adds of a model; the paper's Table 1.

    python -m deeplab_dpc.stats --paper_table1
    python -m deeplab_dpc.stats --model_variant=xception_71 --crop_size=1025,2049
    python -m deeplab_dpc.stats --dense_prediction_cell_json=cell.json --head_only
"""
from absl import flags

from deeplab_dpc import cli

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


def _m(n):
    return f"{n / 1e6:.3f}M"


def _b(n):
    return f"{n / 1e9:.2f}B"


def _delta(ours, paper):
    return f"{100.0 * (ours - paper) / paper:+.1f}%"


def format_paper_table1(rows):
    """Table 1 beside our counts, both parameter conventions labelled."""
    lines = [
        "Paper Table 1 (Cityscapes, 1025x2049 input, output stride 16, module only)",
        "  branch params: conv weights of the branches (the paper's convention)",
        "  trainable:     every trainable weight of the head, BN and concat projection included",
        "",
        f"{'backbone':<13}{'head':<6}{'ch':>5}{'branch params':>15}{'paper':>8}{'diff':>8}"
        f"{'MAdds':>9}{'paper':>8}{'diff':>8}{'trainable':>11}{'paper mIOU':>12}",
    ]
    for r in rows:
        h = r.ours
        lines.append(
            f"{r.backbone:<13}{r.head:<6}{h.feature_shape[-1]:>5}{_m(h.branch_params):>15}"
            f"{r.paper_params:>7.2f}M{_delta(h.branch_params / 1e6, r.paper_params):>8}"
            f"{_b(h.branch_macs):>9}{r.paper_madds:>7.2f}B"
            f"{_delta(h.branch_macs / 1e9, r.paper_madds):>8}{_m(h.trainable_params):>11}"
            f"{r.paper_miou:>11.2f}%")
    lines += [
        "",
        "MAdds count the module's convolutions without the concat projection (every",
        f"head's projection adds {_b(rows[0].ours.projection_macs)}). Our ASPP branch params "
        "include image pooling's 1x1 conv.",
        "Mismatch: the paper's ASPP parameters do not follow the rule that reproduces its",
        "ASPP MAdds (1x1 + three 3x3 separable branches); they equal three C-to-256 1x1",
        "convs plus one depthwise 3x3 (e.g. 3*320*256 + 9*320 = 0.249M, "
        "3*2048*256 + 9*2048 = 1.591M). See BUILD_NOTES.md.",
    ]
    return "\n".join(lines)


def format_model(c, head_only):
    h = c.head
    lines = [f"input {c.image_size[0]}x{c.image_size[1]}, backbone features "
             f"{'x'.join(str(d) for d in c.feature_shape[1:])}"]
    if not head_only:
        lines += [
            f"model     trainable params {_m(c.total_params):>10}   MAdds {_b(c.total_macs)}",
            f"backbone  trainable params {_m(c.backbone_params):>10}   MAdds {_b(c.backbone_macs)}",
        ]
    lines += [
        f"head      trainable params {_m(h.trainable_params):>10}   "
        f"MAdds {_b(h.branch_macs + h.projection_macs)} (BN and projection included)",
        f"head      branch conv params {_m(h.branch_params):>8}   "
        f"MAdds {_b(h.branch_macs)} (the paper's convention: branches only)",
    ]
    return "\n".join(lines)


def main(argv):
    del argv
    from deeplab_dpc.stats import complexity  # imports TensorFlow: after flag parsing.

    if FLAGS.paper_table1:
        print(format_paper_table1(complexity.paper_table1_rows()))
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
    print(format_model(complexity.model_complexity(model, image_size), FLAGS.head_only))


if __name__ == "__main__":
    cli.run(main, flag_names={"backbone": "model_variant"})
