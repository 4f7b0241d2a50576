"""The input pipeline's augmentation settings, checked without TensorFlow (so the
training binary refuses bad scale factors before the slow import)."""
import dataclasses

import numpy as np

from deeplab_dpc import common
from deeplab_dpc.errors import InputError


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """Augmentation settings, named as the reference flags."""

    crop_size: tuple = None  # (height, width) or None
    ignore_label: int = common.DEFAULT_IGNORE_LABEL
    min_scale_factor: float = 0.5
    max_scale_factor: float = 2.0
    scale_factor_step_size: float = 0.25  # 0: any scale in [min, max]
    # The reference's resize to a range (its ADE20K recipe), done before the random scale
    # in training and evaluation alike; see `resized_size`. None: no resize.
    min_resize_value: int = None
    max_resize_value: int = None
    resize_factor: int = None

    def __post_init__(self):
        if self.crop_size is not None:
            crop = tuple(int(c) for c in self.crop_size)
            if len(crop) != 2 or min(crop) < 1:
                raise InputError(f"crop_size must be two positive ints, got {self.crop_size}",
                                 param="crop_size")
            object.__setattr__(self, "crop_size", crop)
        if not 0 < self.min_scale_factor <= self.max_scale_factor:
            raise InputError(
                f"scale factors need 0 < min_scale_factor ({self.min_scale_factor}) "
                f"<= max_scale_factor ({self.max_scale_factor})",
                param=("min_scale_factor", "max_scale_factor"))
        if self.scale_factor_step_size < 0:
            raise InputError("scale_factor_step_size must be >= 0",
                             param="scale_factor_step_size")
        self.scale_factors()  # validates the step
        for name in ("min_resize_value", "max_resize_value", "resize_factor"):
            object.__setattr__(self, name, _positive_int_or_none(getattr(self, name), name))
        if self.min_resize_value is None:
            # The reference resizes when either value is set but then needs the minimum,
            # and ignores a factor alone: refuse both rather than crash or do nothing.
            for name in ("max_resize_value", "resize_factor"):
                if getattr(self, name) is not None:
                    raise InputError(f"{name} needs min_resize_value",
                                     param=(name, "min_resize_value"))
        elif self.max_resize_value is not None and self.min_resize_value > self.max_resize_value:
            raise InputError(
                f"min_resize_value ({self.min_resize_value}) must be <= "
                f"max_resize_value ({self.max_resize_value})",
                param=("min_resize_value", "max_resize_value"))

    def resized_size(self, height, width):
        """The (height, width) that resizing to the range gives a height x width image.

        The reference's rule (`preprocess_utils.resize_to_range`), in its float32
        arithmetic so that the sizes match it exactly (float32 can floor a side one
        below the exact value: 695 x 2048 at min 385 gives 384 x 1134):
          - the short side becomes min_resize_value, each side floor(side * min / short);
          - with max_resize_value, if the long side would exceed it (lowered to a
            multiple of resize_factor plus one, when a factor is given), the long side
            becomes it instead: each side floor(side * max / long);
          - with resize_factor, each side rounds up to a multiple of it plus one.
        Sides are at least 1 (the reference would fail on an empty side). Without
        min_resize_value the size is unchanged.
        """
        if self.min_resize_value is None:
            return int(height), int(width)
        f32 = np.float32
        sides = (f32(height), f32(width))
        scale = f32(self.min_resize_value) / min(sides)
        size = [int(np.floor(side * scale)) for side in sides]
        limit = self.max_resize_value
        if limit is not None:
            if self.resize_factor is not None:
                limit -= (limit - 1) % self.resize_factor
            if max(size) > limit:
                scale = f32(limit) / max(sides)
                size = [int(np.floor(side * scale)) for side in sides]
        size = [max(side, 1) for side in size]
        if self.resize_factor is not None:
            size = [side + (self.resize_factor - (side - 1) % self.resize_factor)
                    % self.resize_factor for side in size]
        return tuple(size)

    def scale_factors(self):
        """The scales training draws from; None means continuous in [min, max]."""
        lo, hi, step = self.min_scale_factor, self.max_scale_factor, self.scale_factor_step_size
        if lo == hi:
            return (float(lo),)
        if step == 0:
            return None
        steps = (hi - lo) / step
        if abs(steps - round(steps)) > 1e-6:
            # The reference's linspace would silently use a different step.
            raise InputError(
                f"scale_factor_step_size {step} does not divide "
                f"max_scale_factor - min_scale_factor = {hi - lo}",
                param="scale_factor_step_size")
        return tuple(float(s) for s in np.linspace(lo, hi, int(round(steps)) + 1))


def _positive_int_or_none(value, name):
    if value is None:
        return None
    try:
        ok = not isinstance(value, bool) and int(value) == value and value >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"{name} must be a positive int, got {value!r}", param=name)
    return int(value)
