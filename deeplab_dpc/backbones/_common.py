"""Pieces shared by the backbones: slim's output-stride rule, layer factories,
and weight-file loading with one-line errors."""
import os

import h5py
import keras

from deeplab_dpc.errors import InputError

# slim's weights initializer for both backbones (mobilenet training_scope and
# xception_arg_scope: truncated normal, stddev 0.09).
INIT_STDDEV = 0.09


class AtrousSchedule:
    """slim's rule for a target output stride.

    Tracks the stride reached so far; once it equals the target, a layer (or
    Xception unit) that would subsample runs at stride 1 with the current rate
    instead, and the rate for the layers after it is multiplied by its stride.
    """

    def __init__(self, output_stride):
        self.output_stride = output_stride
        self.current_stride = 1
        self.rate = 1

    def step(self, stride):
        """Returns (stride, dilation rate) for a layer of nominal `stride`."""
        if self.current_stride == self.output_stride:
            rate = self.rate
            self.rate *= stride
            return 1, rate
        self.current_stride *= stride
        return stride, 1


class Layers:
    """Layer factories with the backbone-wide conv and BN settings."""

    def __init__(self, batch_norm_decay, weight_decay, epsilon=1e-3):
        self.momentum = batch_norm_decay
        self.epsilon = epsilon
        # slim's l2_regularizer(wd) is wd * sum(w^2) / 2.
        self.l2 = keras.regularizers.L2(weight_decay / 2) if weight_decay else None

    @staticmethod
    def _init():
        # A fresh instance per layer: a Keras 3 initializer fixes its seed when
        # constructed, so a shared one would give equal kernels of equal shape.
        return keras.initializers.TruncatedNormal(stddev=INIT_STDDEV)

    def conv(self, filters, kernel, stride=1, padding="same", name=None):
        """Regular conv without bias (always followed by BN), L2-regularised."""
        return keras.layers.Conv2D(
            filters, kernel, strides=stride, padding=padding, use_bias=False,
            kernel_initializer=self._init(), kernel_regularizer=self.l2, name=name)

    def depthwise(self, stride=1, rate=1, padding="same", name=None):
        """3x3 depthwise conv, multiplier 1; not regularised (as the reference)."""
        return keras.layers.DepthwiseConv2D(
            3, strides=stride, dilation_rate=rate, padding=padding, use_bias=False,
            depthwise_initializer=self._init(), name=name)

    def bn(self, name):
        return keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, name=name)


def fixed_padding(rate=1, kernel=3):
    """The reference's input-size-independent padding for strided convs.

    TF 'SAME' pads (0, 1) on even inputs but (1, 1) on odd ones; the reference
    always pads (k_eff - 1) // 2 before and the rest after, then uses VALID.
    """
    total = kernel + (kernel - 1) * (rate - 1) - 1
    return (total // 2, total - total // 2)


def check_file(path, what):
    """InputError unless `path` is an existing file."""
    if not os.path.isfile(path):
        raise InputError(f"{what} weights file not found: {path}")


def load_weights(model, path, what):
    """Loads a weights file into `model`, turning every failure into InputError.

    `*.weights.h5` is Keras 3's own format (e.g. written by a converter);
    any other `.h5`/`.hdf5` is read as a legacy Keras HDF5 file, matched by
    layer name: layers only in the file (a classifier head) are ignored, but
    every layer of `model` that has weights must be there with equal shapes,
    so nothing is left silently at its random initialisation.
    """
    path = os.fspath(path)
    check_file(path, what)
    if path.endswith(".weights.h5"):
        _guarded(lambda: model.load_weights(path), path, what)
        return
    if not path.endswith((".h5", ".hdf5")):
        raise InputError(f"{what} weights file must end in .h5 or .hdf5: {path}")
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            if not any(k.startswith("layer_names") for k in group.attrs):
                raise OSError("no 'layer_names' attribute")
            missing = [layer.name for layer in model.layers
                       if layer.weights and layer.name not in group]
    except OSError as e:
        raise InputError(f"cannot read {what} weights file {path}: "
                         f"not a Keras HDF5 weights file ({e})") from None
    if missing:
        raise InputError(f"{what} weights file {path} lacks layer {missing[0]!r}"
                         f" ({len(missing)} layers missing)")
    _guarded(lambda: model.load_weights(path, by_name=True), path, what)


def _guarded(load, path, what):
    try:
        load()
    except (ValueError, OSError, KeyError) as e:
        message = " ".join(str(e).split())
        raise InputError(f"{what} weights file {path} does not fit the model: "
                         f"{message}") from None
