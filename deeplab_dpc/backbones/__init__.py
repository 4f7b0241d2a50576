"""Backbone registry: `build_backbone(name, ...)` and per-backbone channel counts.

Every backbone takes images already scaled to [-1, 1] and returns a dict
{"features": last features at `output_stride`, "low_level": decoder endpoint
at stride 4}.
"""
from dataclasses import dataclass
from typing import Callable

from deeplab_dpc.backbones import mobilenet_v2, xception
from deeplab_dpc.errors import InputError

OUTPUT_STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class BackboneInfo:
    build: Callable
    feature_channels: Callable  # depth_multiplier -> channels of "features"
    low_level_channels: Callable  # depth_multiplier -> channels of "low_level"
    checkpoint_scope: str  # variable scope of the reference's TF1 checkpoints
    supports_depth_multiplier: bool


def _xception(name):
    return BackboneInfo(
        build=lambda **kw: xception.build(name, **kw),
        feature_channels=lambda dm=1.0, divisible_by=None: xception.FEATURE_CHANNELS,
        low_level_channels=lambda dm=1.0, divisible_by=None: xception.LOW_LEVEL_CHANNELS,
        checkpoint_scope=name,
        supports_depth_multiplier=False)


BACKBONES = {
    "mobilenet_v2": BackboneInfo(
        build=mobilenet_v2.build,
        feature_channels=mobilenet_v2.feature_channels,
        low_level_channels=mobilenet_v2.low_level_channels,
        checkpoint_scope="MobilenetV2",
        supports_depth_multiplier=True),
    **{name: _xception(name) for name in xception.VARIANTS},
}


def _info(name):
    if name not in BACKBONES:
        raise InputError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}",
                         param="backbone")
    return BACKBONES[name]


def feature_channels(name, depth_multiplier=1.0, divisible_by=None):
    return _info(name).feature_channels(depth_multiplier, divisible_by)


def low_level_channels(name, depth_multiplier=1.0, divisible_by=None):
    return _info(name).low_level_channels(depth_multiplier, divisible_by)


def build_backbone(name, output_stride=16, depth_multiplier=1.0, batch_norm_decay=0.9997,
                   weight_decay=4e-5, weights=None, input_shape=(None, None, 3),
                   divisible_by=None, multi_grid=None):
    """Builds backbone `name` as a functional keras.Model with dict outputs.

    `weights`: None, "imagenet" (mobilenet_v2 only; downloads keras.applications'
    file) or a path to a weights file. `divisible_by` (mobilenet_v2) and
    `multi_grid` (xception) are the reference's flags; None keeps its defaults.
    Given to a backbone that has no such setting, they are refused rather than
    ignored as the reference does, so a command line says what it builds.
    """
    info = _info(name)
    if output_stride not in OUTPUT_STRIDES:
        raise InputError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}",
                         param="output_stride")
    kwargs = dict(output_stride=output_stride, batch_norm_decay=batch_norm_decay,
                  weight_decay=weight_decay, weights=weights, input_shape=input_shape)
    if info.supports_depth_multiplier:
        kwargs["depth_multiplier"] = depth_multiplier
        kwargs["divisible_by"] = divisible_by
        if multi_grid:
            raise InputError(f"multi_grid applies to the xception backbones, not {name}",
                             param="multi_grid")
    else:
        if depth_multiplier != 1.0:
            raise InputError(f"depth_multiplier must be 1.0 for {name}, got {depth_multiplier}",
                             param="depth_multiplier")
        if divisible_by is not None:
            raise InputError(f"divisible_by applies to mobilenet_v2, not {name}",
                             param="divisible_by")
        if weights == "imagenet":
            raise InputError(f"no Keras ImageNet weights exist for {name}; pass a weights "
                             "file converted from the reference checkpoint")
        if multi_grid:
            kwargs["multi_grid"] = tuple(multi_grid)
    return info.build(**kwargs)


__all__ = ["BACKBONES", "BackboneInfo", "build_backbone", "feature_channels",
           "low_level_channels"]
