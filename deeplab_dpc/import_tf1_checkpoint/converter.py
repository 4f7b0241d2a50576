"""Reading a reference (TF1 slim) checkpoint into a Keras `DeepLab`.

A TF1 checkpoint holds its variables by name and, unlike a TF2 one, no object
graph, so it is read with `tf.train.load_checkpoint` (no TF1 graph code runs)
and each Keras weight takes the variable that `names.tf1_name` gives it. Every
weight and every checkpoint variable is accounted for before any value is
assigned: a refused checkpoint leaves the model as it was.
"""
import dataclasses
import os

import numpy as np
import tensorflow as tf

from deeplab_dpc.errors import InputError
from deeplab_dpc.import_tf1_checkpoint import names

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"  # present in every TF2 checkpoint
REPORT_FILE = "tf1_import.json"
_PARAM = "tf1_checkpoint"


def _short(error):
    return " ".join(str(error).split())[:300]


def checkpoint_prefix(path, param=_PARAM):
    """The prefix of a checkpoint given as its prefix or as its directory (the one
    its `checkpoint` file names, else the directory's only `*.index`: the released
    tarballs hold `model.ckpt.*` without a `checkpoint` file)."""
    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is not None:
            return prefix
        indexes = sorted(tf.io.gfile.glob(os.path.join(path, "*.index")))
        if len(indexes) != 1:
            found = "no checkpoint" if not indexes else f"{len(indexes)} checkpoints"
            raise InputError(f"{param} {path}: {found} in this folder; name one by its "
                             "prefix (e.g. model.ckpt-90000)", param=param)
        return indexes[0][:-len(".index")]
    if not tf.io.gfile.exists(path + ".index"):
        raise InputError(f"{param} {path}: no such checkpoint (expected a prefix whose "
                         ".index file exists, e.g. model.ckpt, or its folder)", param=param)
    return path


def _reader(prefix):
    try:
        return tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise InputError(f"cannot read checkpoint {prefix}: {_short(e)}") from None


def open_tf1_checkpoint(path, param=_PARAM):
    """(prefix, reader) of the reference checkpoint at `path`; a TF2 checkpoint (ours)
    is refused, naming `param`."""
    prefix = checkpoint_prefix(path, param)
    reader = _reader(prefix)
    if OBJECT_GRAPH_KEY in reader.get_variable_to_shape_map():
        raise InputError(f"{param} {prefix} is a TF2 checkpoint, not the reference's TF1 "
                         "checkpoint (a run directory of ours loads as it is)", param=param)
    return prefix, reader


def is_tf1_checkpoint(path, param=_PARAM):
    """True for a checkpoint the reference (a TF1 `Saver`) wrote: no object graph."""
    prefix = checkpoint_prefix(path, param)
    return OBJECT_GRAPH_KEY not in _reader(prefix).get_variable_to_shape_map()


def _read(reader, prefix, name):
    # A truncated or missing data file surfaces only here, as IndexError or OpError.
    try:
        return np.asarray(reader.get_tensor(name))
    except (tf.errors.OpError, IndexError, ValueError) as e:
        raise InputError(f"cannot read variable {name} of checkpoint {prefix} (a damaged or "
                         f"incomplete download?): {_short(e)}") from None


@dataclasses.dataclass
class ImportReport:
    """What an import took, left and skipped; `to_dict` is the JSON report."""

    checkpoint: str
    used: list  # (TF1 name, Keras weight path, shape), in the model's weight order
    unused: dict  # kind -> TF1 names present in the checkpoint that no weight took
    unset: list  # Keras weight paths left at their initial values (excluded layers)
    global_step: int = None  # the checkpoint's, if it has one
    values: str = ("variables themselves; ExponentialMovingAverage copies are left "
                   "unused, as the reference's eval, vis and export restore them")

    def to_dict(self):
        return {"tf1_checkpoint": self.checkpoint,
                "used": [{"tf1": n, "keras": p, "shape": list(s)} for n, p, s in self.used],
                "unused": {kind: sorted(v) for kind, v in self.unused.items()},
                "unset": list(self.unset), "global_step": self.global_step,
                "values": self.values}

    def summary(self):
        unused = ", ".join(f"{len(v)} {kind}" for kind, v in self.unused.items()) or "none"
        unset = f"{len(self.unset)} weights left at their initial values" if self.unset \
            else "every weight set"
        return (f"{self.checkpoint}: {len(self.used)} variables used; unused: {unused}; "
                f"{unset}")


_ALL_LAST_LAYER_SCOPES = tuple(s for scopes in names.LAST_LAYER_SCOPES.values() for s in scopes)


def _skipped_scopes(skip):
    """The reference's scopes of skipped last layers: its `get_extra_layer_scopes` skips
    every head and decoder scope (whatever this model has), or the logits only."""
    if not skip:
        return ()
    return names.LAST_LAYER_SCOPES["logits"] if skip == {"logits"} else _ALL_LAST_LAYER_SCOPES


def _hint(stray, head):
    """The flag that would have used leftover variables (the head's first), as '; ...'."""
    return next(("; " + hint for hint in names.flag_hints(stray, head)), "")


_MODEL_PARAMS = ("dense_prediction_cell_json", "decoder_output_stride", "atrous_rates",
                 "add_image_level_feature", "model_variant", "depth_multiplier")


def _refusal(prefix, model, missing, mismatched, stray, shapes, fine_tuning):
    """The one line for the first thing that does not fit, most telling first."""
    last = set(model.last_layers())
    in_backbone = [m for m in missing if m[0].split("/")[0] not in last]
    if in_backbone and len(in_backbone) == len(model.backbone.weights):
        return InputError(
            f"checkpoint {prefix} has no {model.backbone_name} backbone variables (no "
            f"{in_backbone[0][1]}); check model_variant", param="model_variant")
    if missing:
        path, name, shape = missing[0]
        if fine_tuning and all(m[0].split("/")[0] in last for m in missing) and not any(
                n.startswith(_ALL_LAST_LAYER_SCOPES) for n in shapes):
            return InputError(
                f"checkpoint {prefix} has no variables of the head, decoder or logits (no "
                f"{name}): a backbone checkpoint, e.g. ImageNet? Pass initialize_last_layer="
                "False to start them from scratch", param="initialize_last_layer")
        return InputError(
            f"checkpoint {prefix} has no variable {name} (for the Keras weight {path}, shape "
            f"{list(shape)}; {len(missing)} missing in all){_hint(stray, model.head)}",
            param=_MODEL_PARAMS)
    if mismatched:
        path, name, theirs, ours = mismatched[0]
        if name.startswith("logits/"):
            fix = ("initialize_last_layer=False leaves the logits out" if fine_tuning else
                   f"import with num_classes={theirs[-1]} or its dataset")
            return InputError(
                f"checkpoint {prefix}: variable {name} has shape {list(theirs)}, the Keras "
                f"weight {path} has shape {list(ours)}: the checkpoint has {theirs[-1]} "
                f"classes, the model {ours[-1]} ({fix})",
                param=("initialize_last_layer", "num_classes"))
        return InputError(
            f"checkpoint {prefix}: variable {name} has shape {list(theirs)}, the Keras weight "
            f"{path} has shape {list(ours)}; check model_variant and depth_multiplier",
            param=("model_variant", "depth_multiplier"))
    return InputError(
        f"checkpoint {prefix}: variable {stray[0]} {list(shapes[stray[0]])} has no place in "
        f"this model ({len(stray)} such variables){_hint(stray, model.head)}", param=_MODEL_PARAMS)


def load_tf1_weights(model, path, skip_layers=(), param=_PARAM, fine_tuning=False):
    """Sets every weight of `model` (a `DeepLab`) from the reference checkpoint at
    `path`, except those of the top-level layers `skip_layers` (e.g. the logits of
    another class count). Returns an `ImportReport`.

    Refused, with one line naming the variable (and both shapes where they differ):
    a weight whose variable is missing or of another shape, and a checkpoint variable
    that no weight takes unless it is of an allowed kind (`names.ALLOWED_UNUSED`) or
    in the scopes of skipped layers. Nothing is assigned before everything has been
    checked. `param` names the flag of `path`; `fine_tuning` (training) suggests
    `initialize_last_layer` where an import would suggest `num_classes`.
    """
    prefix, reader = open_tf1_checkpoint(path, param)
    shapes = reader.get_variable_to_shape_map()
    skip = set(skip_layers)
    plan, missing, mismatched, unset = [], [], [], []
    for layer in model.layers:
        for weight in layer.weights:
            if layer.name in skip:
                unset.append(weight.path)
                continue
            name = names.tf1_name(weight.path, model.backbone_name)
            where = f"{layer.name}/{weight.path}" if layer.name != weight.path.split("/")[0] \
                else weight.path
            if name not in shapes:
                missing.append((where, name, tuple(weight.shape)))
            elif tuple(shapes[name]) != tuple(weight.shape):
                mismatched.append((weight.path, name, tuple(shapes[name]), tuple(weight.shape)))
            else:
                plan.append((weight, name))

    taken = {name for _, name in plan} | {m[1] for m in mismatched}
    skipped_scopes = _skipped_scopes(skip)
    unused, stray = {}, []
    for name in sorted(shapes):
        if name in taken:
            continue
        kind = ("excluded last layers" if skipped_scopes and name.startswith(skipped_scopes)
                else names.allowed_unused_kind(name))
        if kind is None:
            stray.append(name)
        else:
            unused.setdefault(kind, []).append(name)
    if missing or mismatched or stray:
        raise _refusal(prefix, model, missing, mismatched, stray, shapes, fine_tuning)

    values = [_read(reader, prefix, name).astype(weight.dtype) for weight, name in plan]
    for (weight, _), value in zip(plan, values):
        weight.assign(value)
    step = int(_read(reader, prefix, "global_step")) if "global_step" in shapes else None
    return ImportReport(
        checkpoint=prefix,
        used=[(name, weight.path, tuple(weight.shape)) for weight, name in plan],
        unused=unused, unset=unset, global_step=step)


def num_classes(reader):
    """The class count of a checkpoint's logits, or None (a backbone checkpoint)."""
    biases = reader.get_variable_to_shape_map().get(names.LOGITS["logits/bias"])
    return int(biases[0]) if biases else None
