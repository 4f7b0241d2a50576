"""The figures of `stats` as text: a model's counts, and the paper's Table 1 beside ours."""


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


def format_model(c, head_only=False):
    """A `complexity.ModelComplexity` as lines: model, backbone and head."""
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


def format_presets(rows):
    """The model presets, with their whole-model and head costs."""
    size = rows[0][2].image_size if rows else ("?", "?")
    lines = [f"Model presets (--model_preset, deeplab_dpc.build_model(preset=...)); "
             f"costs at {size[0]}x{size[1]}",
             f"{'preset':<40}{'classes':>8}{'params':>10}{'MAdds':>10}{'head params':>13}"
             f"{'head MAdds':>12}"]
    for name, preset, c in rows:
        lines.append(f"{name:<40}{preset.model['num_classes']:>8}{_m(c.total_params):>10}"
                     f"{_b(c.total_macs):>10}{_m(c.head.trainable_params):>13}"
                     f"{_b(c.head.branch_macs + c.head.projection_macs):>12}")
        lines.append(f"  {preset.description}")
    return "\n".join(lines)
