"""Starting a DeepLab run from an earlier checkpoint (`--tf_initial_checkpoint`).

As the reference: everything is copied, or everything but the last layers
(`initialize_last_layer`, `last_layers_contain_logits_only`), e.g. to fine-tune
on a dataset with another class count. The checkpoint is one of ours (a run
directory, a prefix in it, `.keras`, `.weights.h5`) or the reference's own TF1
checkpoint (a whole DeepLab model, or an ImageNet backbone with
`initialize_last_layer=False`), read by `import_tf1_checkpoint.converter`.
"""
import os

import keras
import tensorflow as tf

from deeplab_dpc.errors import InputError
from deeplab_dpc.import_tf1_checkpoint import converter
from deeplab_dpc.model import DeepLab
from deeplab_dpc.run_dir import CONFIG_FILE, load_model, short_error as _short


def _source_model(path, model):
    """The model an initial checkpoint holds (ours, `.keras`, or `.weights.h5`)."""
    path = os.fspath(path)
    if path.endswith(".keras"):
        if not tf.io.gfile.exists(path):
            raise InputError(f"tf_initial_checkpoint {path} does not exist",
                             param="tf_initial_checkpoint")
        try:
            return keras.saving.load_model(path, compile=False)
        except (ValueError, OSError, TypeError) as e:
            raise InputError(f"cannot load {path}: {_short(e)}") from None
    if path.endswith(".weights.h5"):
        if not tf.io.gfile.exists(path):
            raise InputError(f"tf_initial_checkpoint {path} does not exist",
                             param="tf_initial_checkpoint")
        source = DeepLab.from_config(model.get_config())
        try:  # the file must fit this architecture (the logits layer may differ)
            source.load_weights(path, skip_mismatch=True)
        except (ValueError, OSError, KeyError) as e:
            raise InputError(f"cannot load {path}: {_short(e)}") from None
        return source
    if not tf.io.gfile.isdir(path) and not tf.io.gfile.exists(path + ".index"):
        raise InputError(f"tf_initial_checkpoint {path} does not exist (expected a run "
                         "directory, a checkpoint prefix, .keras or .weights.h5)",
                         param="tf_initial_checkpoint")
    return load_model(path)[0]


def excluded_layers(model, initialize_last_layer, last_layers_contain_logits_only):
    """Top-level layers an initial checkpoint must not set, as the reference's
    `get_extra_layer_scopes`: the logits, and unless `last_layers_contain_logits_only`
    also the head and decoder."""
    if initialize_last_layer:
        return set()
    return set(model.last_layers(last_layers_contain_logits_only))


def _is_tf1(path):
    """A TF1 checkpoint: a prefix or folder of one that is not a run directory of ours."""
    path = os.fspath(path)
    if path.endswith((".keras", ".weights.h5")) or tf.io.gfile.exists(
            os.path.join(path, CONFIG_FILE)):
        return False
    if not tf.io.gfile.isdir(path) and not tf.io.gfile.exists(path + ".index"):
        return False
    return converter.is_tf1_checkpoint(path, param="tf_initial_checkpoint")


def restore_initial_weights(model, path, initialize_last_layer=True,
                            last_layers_contain_logits_only=False):
    """Copies weights (BN statistics included) from an initial checkpoint, layer by
    top-level layer, skipping the excluded ones (e.g. logits of another class count).

    Returns (the skipped layers' names, the `converter.ImportReport` of a TF1
    checkpoint or None)."""
    skip = excluded_layers(model, initialize_last_layer, last_layers_contain_logits_only)
    if _is_tf1(path):
        return sorted(skip), converter.load_tf1_weights(
            model, path, skip, param="tf_initial_checkpoint", fine_tuning=True)
    source = _source_model(path, model)
    updates = []  # all checked before any is set: a refused checkpoint changes nothing
    for layer in model.layers:
        if not layer.weights or layer.name in skip:
            continue
        try:
            values = source.get_layer(layer.name).get_weights()
        except ValueError:
            raise InputError(f"initial checkpoint {path} has no layer {layer.name!r}") from None
        shapes = [w.shape for w in layer.weights]
        if [tuple(v.shape) for v in values] != [tuple(s) for s in shapes]:
            hint = (" (different classes? pass initialize_last_layer=false)"
                    if layer.name == "logits" else "")
            raise InputError(f"initial checkpoint {path}: layer {layer.name!r} does not fit "
                             f"this model{hint}", param="initialize_last_layer")
        updates.append((layer, values))
    for layer, values in updates:
        layer.set_weights(values)
    return sorted(skip), None
