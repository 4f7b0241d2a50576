"""`TrainConfig`: every training setting as a plain, validated, frozen value.

Field names are the reference DeepLab flag names where one exists, so the
binary maps flags one to one and `model_config.json` reads like a command line.
This module imports no TensorFlow: bad settings are refused in a second.
"""
import dataclasses

from deeplab_dpc.data.input_config import InputConfig
from deeplab_dpc.errors import InputError

LEARNING_POLICIES = ("poly", "step")
MIXED_PRECISION = {"none": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
STRATEGIES = ("default", "mirrored", "multi_worker_mirrored", "tpu")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training settings. `model` holds `DeepLab` constructor arguments except
    `num_classes` (which comes from the dataset), e.g. backbone, head, cell."""

    train_logdir: str
    dataset_dir: str = None
    dataset: str = "synthetic"
    train_split: str = "train"
    model: dict = dataclasses.field(default_factory=dict)
    backbone_weights: str = None  # None, "imagenet" or an .h5 path; used on a fresh run only
    train_crop_size: tuple = (513, 513)
    train_batch_size: int = 8  # global, per call; one step sees this x accumulation steps
    min_scale_factor: float = 0.5
    max_scale_factor: float = 2.0
    scale_factor_step_size: float = 0.25
    min_resize_value: int = None  # the reference's resize to a range, before the scale
    max_resize_value: int = None
    resize_factor: int = None
    base_learning_rate: float = 1e-4
    learning_policy: str = "poly"
    learning_power: float = 0.9
    learning_rate_decay_step: int = 2000
    learning_rate_decay_factor: float = 0.1
    training_number_of_steps: int = 30000
    slow_start_step: int = 0
    slow_start_learning_rate: float = 1e-4
    momentum: float = 0.9
    fine_tune_batch_norm: bool = True
    sync_batch_norm: bool = False
    top_k_percent_pixels: float = 1.0
    hard_example_mining_step: int = 0
    tf_initial_checkpoint: str = None
    initialize_last_layer: bool = True
    last_layers_contain_logits_only: bool = False
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "none"
    jit_compile: bool = False
    save_interval_steps: int = 1000
    max_checkpoints_to_keep: int = 5
    log_steps: int = 10
    seed: int = 0

    def __post_init__(self):
        def positive(name):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}", param=name)

        for name in ("train_batch_size", "training_number_of_steps", "save_interval_steps",
                     "log_steps", "gradient_accumulation_steps", "max_checkpoints_to_keep",
                     "learning_rate_decay_step"):
            positive(name)
        if not self.train_logdir:
            raise InputError("train_logdir is required", param="train_logdir")
        crop = tuple(int(c) for c in self.train_crop_size)
        if len(crop) != 2 or min(crop) < 1:
            raise InputError(f"train_crop_size must be height,width, got {self.train_crop_size}",
                             param="train_crop_size")
        object.__setattr__(self, "train_crop_size", crop)
        stride = dict(self.model).get("output_stride", 16)
        if isinstance(stride, int) and min(crop) < stride + 1:
            raise InputError(
                f"train_crop_size {crop[0]}x{crop[1]} gives a feature map of "
                f"{(crop[0] - 1) // stride + 1}x{(crop[1] - 1) // stride + 1} at output stride "
                f"{stride}; a crop needs at least {stride + 1} pixels a side (a 2x2 map): on a "
                "1x1 map the head's atrous convs and pooling see nothing and batch norm has "
                "one value per image (such a run went from loss 0.06 to 1113 in 4 steps)",
                param="train_crop_size")
        object.__setattr__(self, "model", dict(self.model))
        InputConfig(crop, min_scale_factor=self.min_scale_factor,  # checks scales, resize
                    max_scale_factor=self.max_scale_factor,
                    scale_factor_step_size=self.scale_factor_step_size,
                    min_resize_value=self.min_resize_value,
                    max_resize_value=self.max_resize_value, resize_factor=self.resize_factor)
        if self.learning_policy not in LEARNING_POLICIES:
            raise InputError(f"learning_policy {self.learning_policy!r}: expected one of "
                             f"{', '.join(LEARNING_POLICIES)}", param="learning_policy")
        if self.mixed_precision not in MIXED_PRECISION:
            raise InputError(f"mixed_precision {self.mixed_precision!r}: expected one of "
                             f"{', '.join(MIXED_PRECISION)}", param="mixed_precision")
        if not 0.0 < self.top_k_percent_pixels <= 1.0:
            raise InputError(f"top_k_percent_pixels must be in (0, 1], got "
                             f"{self.top_k_percent_pixels}", param="top_k_percent_pixels")
        if self.base_learning_rate <= 0 or self.slow_start_learning_rate < 0:
            raise InputError("learning rates must be positive",
                             param=("base_learning_rate", "slow_start_learning_rate"))
        if not 0 <= self.slow_start_step < self.training_number_of_steps:
            raise InputError(f"slow_start_step must be in [0, training_number_of_steps), got "
                             f"{self.slow_start_step}", param="slow_start_step")
        if self.hard_example_mining_step < 0:
            raise InputError("hard_example_mining_step must be >= 0", param="hard_example_mining_step")

    def to_dict(self):
        """JSON-ready settings (the cell in the reference format)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["model"] = dict(self.model)
        if hasattr(d["model"].get("cell"), "to_reference"):
            d["model"]["cell"] = d["model"]["cell"].to_reference()
        for key, value in d["model"].items():
            if isinstance(value, tuple):
                d["model"][key] = list(value)
        d["train_crop_size"] = list(self.train_crop_size)
        return d
