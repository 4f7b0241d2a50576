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
