"""Named model configurations: the paper's rows, by name.

A preset fixes what makes the network (backbone, head, cell, output strides, class
count); everything else stays a flag or an argument. `build_model(preset=...)` and
`--model_preset` take them; an explicit setting that contradicts one is refused,
because a preset that silently changes is worse than none.
"""
import dataclasses
import json

from deeplab_dpc.errors import InputError
from deeplab_dpc.spec import PUBLISHED_CELL_PATH, CellSpec

ASPP_RATES = (6, 12, 18)
with open(PUBLISHED_CELL_PATH) as _f:
    PUBLISHED_CELL = json.load(_f)  # the reference JSON, as a cell file gives it
# What a preset fixes: every argument that changes the network's weights or outputs.
FIELDS = ("num_classes", "backbone", "head", "cell", "atrous_rates", "output_stride",
          "decoder_output_stride", "depth_multiplier", "divisible_by", "multi_grid",
          "aspp_with_separable_conv", "add_image_level_feature", "image_pooling_crop_size",
          "head_filters")


@dataclasses.dataclass(frozen=True)
class Preset:
    description: str  # what it reproduces, with the paper's figure
    model: dict  # `DeepLab` arguments, num_classes included


def _row(description, num_classes, backbone, head, decoder, atrous_rates=ASPP_RATES,
         depth_multiplier=1.0):
    return Preset(description, dict(
        num_classes=num_classes, backbone=backbone, head=head,
        cell=PUBLISHED_CELL if head == "dpc" else None,
        atrous_rates=tuple(atrous_rates) if head == "aspp" else (), output_stride=16,
        decoder_output_stride=4 if decoder else None, depth_multiplier=depth_multiplier,
        divisible_by=None, multi_grid=None, aspp_with_separable_conv=True,
        add_image_level_feature=True, image_pooling_crop_size=None, head_filters=256))


PRESETS = {
    "mobilenet_v2_aspp_cityscapes": _row(
        "Table 1: MobileNet-v2 + ASPP 6/12/18, Cityscapes val 73.97%", 19, "mobilenet_v2",
        "aspp", False),
    "mobilenet_v2_dpc_cityscapes": _row(
        "Table 1: MobileNet-v2 + the published DPC, Cityscapes val 75.38%", 19,
        "mobilenet_v2", "dpc", False),
    "xception_71_aspp_cityscapes": _row(
        "Table 1: Xception-71 + ASPP 6/12/18 + decoder, Cityscapes val 80.25%", 19,
        "xception_71", "aspp", True),
    "xception_71_dpc_cityscapes": _row(
        "Table 1: Xception-71 + the published DPC + decoder, Cityscapes val 80.85% "
        "(released checkpoint: 80.31%)", 19, "xception_71", "dpc", True),
    "xception_71_dpc_pascal_voc": _row(
        "Table 4: Xception-71 + the published DPC + decoder, PASCAL VOC 2012 test 87.9%",
        21, "xception_71", "dpc", True),
    "xception_71_dpc_person_part": _row(
        "Table 3: Xception-71 + the published DPC + decoder, PASCAL-Person-Part val 71.34%",
        7, "xception_71", "dpc", True),
    "mobilenet_v2_aspp_pascal_voc_reference": _row(
        "the reference's MobileNet-v2 PASCAL model (ASPP without atrous branches; its "
        "local_test_mobilenetv2.sh)", 21, "mobilenet_v2", "aspp", False, atrous_rates=()),
    "quickstart": _row(
        "no paper figure: README's quickstart on the synthetic set (MobileNet-v2 depth 0.5 "
        "+ the published DPC)", 8, "mobilenet_v2", "dpc", False, depth_multiplier=0.5),
}


def get_preset(name):
    if name not in PRESETS:
        raise InputError(f"unknown model_preset {name!r}; known: {', '.join(PRESETS)}",
                         param="model_preset")
    return PRESETS[name]


def normalized(key, value):
    """`value` of model argument `key` in a comparable form (cells as reference JSON,
    sequences as lists)."""
    if key == "cell" and value is not None:
        return (value if isinstance(value, CellSpec) else CellSpec.from_reference(value)) \
            .to_reference()
    return list(value) if isinstance(value, (list, tuple)) else value


def contradiction(name, given):
    """The first key of `given` (model arguments) whose value contradicts preset
    `name`, or None."""
    model = get_preset(name).model
    return next((key for key, value in given.items()
                 if key in model and normalized(key, value) != normalized(key, model[key])),
                None)


def apply_preset(name, given):
    """The preset's model arguments updated with `given` (explicit settings); one
    that contradicts the preset is an InputError naming it."""
    model = dict(get_preset(name).model)
    key = contradiction(name, given)
    if key is not None:
        raise InputError(f"{key}={given[key]!r} contradicts model_preset {name} "
                         f"({key}={model[key]!r}); drop one of them",
                         param=(key, "model_preset"))
    return dict(model, **given)
