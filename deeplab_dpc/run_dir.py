"""The run directory: checkpoints plus the config that rebuilds their model.

Training writes it; eval, vis, predict, export (and the search's re-ranking) read
it, so it lives here rather than in the training package.

Layout of a `train_logdir`:
  model_config.json   {"model_class": "DeepLab", "model": DeepLab.get_config() (cell
                       included), "dataset": DatasetInfo.to_dict(),
                       "train": TrainConfig.to_dict()}; other models trained with
                       `train.loop` name their own class
  checkpoint          tf.train.CheckpointManager's index of the files below
  ckpt-<step>.index, ckpt-<step>.data-*
                      tf.train.Checkpoint(model={path: weight}, optimizer={path:
                      variable}, step=, rng=[dropout generator states])
  events.out.tfevents.*   TensorBoard summaries
Eval, vis, predict and export need only the directory: `load_model(dir)`.
"""
import json
import os
import time

import tensorflow as tf

from deeplab_dpc import files
from deeplab_dpc.common import CHECKPOINT_NAME
from deeplab_dpc.data.datasets import DatasetInfo
from deeplab_dpc.errors import InputError
from deeplab_dpc.model import DeepLab

CONFIG_FILE = "model_config.json"
DEEPLAB = DeepLab.__name__  # `model_class` of DeepLab runs (and of directories without one)
STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"  # the trainer's `step` variable in a checkpoint


def rng_variables(model):
    """The model's random-generator states (dropout's seed generator).

    Keras keeps them out of `model.weights`, so a checkpoint of the model alone
    would restart dropout's stream on resume; the trainer saves them too.
    """
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _by_path(variables):
    return {v.path: v for v in variables}


def make_checkpoint(model, optimizer=None, step=None):
    """The training checkpoint; `load_model` reads its `model` part only.

    Variables are keyed by their Keras paths (`dense_prediction_cell/branch0/
    depthwise/kernel`), not by the Python object graph: Keras 3 layers hide
    lists of sublayers (the cell's `branches`) from tf.train.Checkpoint, so an
    object-graph checkpoint of the model silently misses them. Dropout's
    generator states are auto-named, so they go by position.
    """
    parts = dict(model=_by_path(model.weights), rng=rng_variables(model))
    if optimizer is not None:
        parts.update(optimizer=_by_path(optimizer.variables), step=step)
    return tf.train.Checkpoint(**parts)


def short_error(error):
    """An exception's message on one line, cut to a readable length."""
    return " ".join(str(error).split())[:300]


def read_run_config(run_dir):
    """The dict in `run_dir/model_config.json`; InputError naming the file."""
    path = os.path.join(run_dir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        if not tf.io.gfile.isdir(run_dir):
            raise _missing(run_dir)
        raise InputError(f"{run_dir} is not a training run directory: no {CONFIG_FILE}")
    config = files.read_json(path, CONFIG_FILE)
    if not isinstance(config, dict) or not {"model", "dataset"} <= set(config):
        raise InputError(f"{path}: expected an object with 'model' and 'dataset'")
    return validate_run_config(config, path)


_TOP_LEVEL = ("model_class", "model", "dataset", "train")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _size(v):
    return v is None or (isinstance(v, list) and len(v) == 2 and all(
        _is_int(x) and x > 0 for x in v))


# DeepLab's config fields: (check, what it must be). Keys not listed are refused;
# missing ones take DeepLab's defaults, so older run directories still load.
_DEEPLAB_FIELDS = {
    "name": (lambda v: isinstance(v, str), "a string"),
    "num_classes": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "backbone": (lambda v: isinstance(v, str), "a backbone name"),
    "head": (lambda v: v in ("dpc", "aspp"), "'dpc' or 'aspp'"),
    "cell": (lambda v: v is None or isinstance(v, list), "null or a cell (a list of branches)"),
    "atrous_rates": (lambda v: isinstance(v, list) and all(_is_int(r) and r > 0 for r in v),
                     "a list of positive integers"),
    "aspp_with_separable_conv": (lambda v: isinstance(v, bool), "true or false"),
    "add_image_level_feature": (lambda v: isinstance(v, bool), "true or false"),
    "image_pooling_crop_size": (_size, "null or [height, width]"),
    "output_stride": (lambda v: v in (8, 16, 32) and _is_int(v), "8, 16 or 32"),
    "decoder_output_stride": (lambda v: v is None or v == 4 and _is_int(v), "null or 4"),
    "depth_multiplier": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "divisible_by": (lambda v: v is None or _is_int(v) and v >= 1, "null or an integer >= 1"),
    "multi_grid": (lambda v: v is None or isinstance(v, list) and len(v) == 3 and all(
        _is_int(r) and r > 0 for r in v), "null or three positive integers"),
    "head_filters": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "dropout_rate": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "batch_norm_decay": (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "weight_decay": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
}
# The fields of the "train" part that readers use (eval and vis follow the run).
_TRAIN_FIELDS = {
    "dataset": (lambda v: v is None or isinstance(v, str), "a dataset name"),
    "dataset_dir": (lambda v: v is None or isinstance(v, str), "a path"),
    "training_number_of_steps": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
}


def _check_fields(part, section, checks, path, known=None):
    if not isinstance(part, dict):
        raise InputError(f"{path}: {section!r} must be an object")
    unknown = sorted(set(part) - set(known if known is not None else checks))
    if unknown:
        raise InputError(f"{path}: unknown field {section}.{unknown[0]}")
    for key, value in part.items():
        check, expected = checks.get(key, (None, None))
        if check is not None and not check(value):
            raise InputError(f"{path}: field {section}.{key}: expected {expected}, got "
                             f"{json.dumps(value)[:60]}")


def validate_run_config(config, path):
    """Checks `model_config.json` field by field (type, range, unknown keys), naming
    the file and field; the cell is validated as a cell file would be. The "train"
    part records the training settings: the fields readers use are checked, the
    rest is a record of the run."""
    unknown = sorted(set(config) - set(_TOP_LEVEL))
    if unknown:
        raise InputError(f"{path}: unknown field {unknown[0]!r}")
    model_class = config.get("model_class", DEEPLAB)
    if not isinstance(model_class, str):
        raise InputError(f"{path}: field 'model_class' must be a string")
    if model_class == DEEPLAB:
        _check_fields(config["model"], "model", _DEEPLAB_FIELDS, path)
        if "num_classes" not in config["model"]:
            raise InputError(f"{path}: field model.num_classes is missing")
        if config["model"].get("cell") is not None:
            from deeplab_dpc.spec import CellSpec

            try:
                CellSpec.from_reference(config["model"]["cell"])
            except InputError as e:
                raise InputError(f"{path}: field model.cell: {e}") from None
    DatasetInfo.from_dict(config["dataset"], source=f"{path}: field dataset")
    if "train" in config:
        _check_fields(config["train"], "train", _TRAIN_FIELDS, path, known=config["train"])
    return config


def _run_config(model, dataset_info, train_settings, model_class):
    config = {"model_class": model_class, "model": model.get_config(),
              "dataset": dataset_info.to_dict(), "train": train_settings}
    return json.loads(json.dumps(config))  # tuples -> lists, as they will be read back


def check_run_config(run_dir, model, model_class=DEEPLAB):
    """Refuses to resume `run_dir` with a different model (another cell, backbone or
    class count): its checkpoints could not be restored into it. Writes nothing."""
    path = os.path.join(run_dir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return
    old_config = read_run_config(run_dir)
    old, new = old_config["model"], json.loads(json.dumps(model.get_config()))
    changed = sorted(k for k in set(old) | set(new) if k != "name" and old.get(k) != new.get(k))
    if old_config.get("model_class", DEEPLAB) != model_class:
        changed.insert(0, "model_class")
    if changed:
        raise InputError(
            f"{run_dir} holds a run of a different model (differs in "
            f"{', '.join(changed)}); use a new train_logdir", param="train_logdir")


def write_run_config(run_dir, model, dataset_info, train_settings, model_class=DEEPLAB):
    """Writes `model_config.json` atomically (after `check_run_config`)."""
    check_run_config(run_dir, model, model_class)
    return files.write_json_atomically(
        os.path.join(run_dir, CONFIG_FILE),
        _run_config(model, dataset_info, train_settings, model_class))


def directory_of(path):
    """The run directory of a run directory or of a checkpoint prefix in it (a path
    that is neither comes back as is, for the reader to name it)."""
    path = os.fspath(path)
    if tf.io.gfile.isdir(path) or not tf.io.gfile.exists(path + ".index"):
        return path
    return os.path.dirname(path)


def _resolve(path):
    """(run directory, checkpoint prefix) for a run directory or a checkpoint prefix."""
    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            raise InputError(f"no checkpoint in {path}")
        return path, prefix
    if not tf.io.gfile.exists(path + ".index"):
        raise _missing(path)
    return os.path.dirname(path), path


def _missing(path):
    """The error for a checkpoint path that is neither a directory nor a prefix."""
    return InputError(f"checkpoint {path} does not exist (expected a run directory or a "
                      f"checkpoint prefix such as <dir>/{CHECKPOINT_NAME}-1000)"
                      f"{files.checkpoints_note(path)}")


def restore(checkpoint, prefix):
    """Restores `checkpoint` from `prefix`; every object it holds must be found."""
    try:
        checkpoint.read(prefix).assert_existing_objects_matched().expect_partial()
    except (tf.errors.OpError, AssertionError, ValueError, IndexError, KeyError) as e:
        # A truncated data file surfaces as IndexError from the reader.
        raise InputError(f"cannot restore checkpoint {prefix}: {short_error(e)}") from None


def read_deeplab_config(checkpoint_dir_or_path):
    """The run config of a DeepLab run (directory or checkpoint prefix); InputError
    naming the file for any other model class."""
    run = directory_of(checkpoint_dir_or_path)
    config = read_run_config(run)
    model_class = config.get("model_class", DEEPLAB)
    if model_class != DEEPLAB:
        raise InputError(f"{os.path.join(run, CONFIG_FILE)}: the run trained a "
                         f"{model_class}, not a DeepLab model; only DeepLab runs load here")
    return config


def latest_checkpoint(run_dir):
    """The checkpoint a run in `run_dir` resumes from, or None for a fresh run."""
    return tf.train.latest_checkpoint(run_dir) if tf.io.gfile.isdir(run_dir) else None


def checkpoint_step(prefix):
    """The training step a checkpoint was saved at (its `step` variable, else its suffix)."""
    try:
        return int(tf.train.load_variable(prefix, STEP_KEY))
    except (tf.errors.OpError, ValueError):
        suffix = prefix.rsplit("-", 1)[-1]
        return int(suffix) if suffix.isdigit() else 0


def follow_checkpoints(checkpoint_dir_or_path, interval_secs=300, max_count=0, final_step=None,
                       log=print, sleep=time.sleep):
    """Yields checkpoint prefixes to evaluate: a prefix itself once; for a run
    directory its latest checkpoint, then each newer one as training saves it.

    Stops after `max_count` checkpoints (0: no limit) or after the one at
    `final_step` (the run's last). With `max_count == 1` a directory without a
    checkpoint is an error; otherwise it is waited for (eval started before training).
    """
    path = os.fspath(checkpoint_dir_or_path)
    if not tf.io.gfile.isdir(path):
        yield path
        return
    last, count, waiting = None, 0, False
    while True:
        started = time.time()
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None and max_count == 1:
            raise InputError(f"no checkpoint in {path}")
        if prefix is not None and prefix != last:
            yield prefix
            last, count, waiting = prefix, count + 1, False
            if (max_count and count >= max_count) or (
                    final_step is not None and checkpoint_step(prefix) >= final_step):
                return
        elif not waiting:
            log(f"waiting for a new checkpoint in {path} (every {interval_secs} s)")
            waiting = True
        sleep(max(0.0, started + interval_secs - time.time()))


def restored_models(prefixes):
    """Yields (prefix, model, run DatasetInfo): the model is built once from the run's
    config and its weights replaced for each later checkpoint."""
    model = info = None
    for prefix in prefixes:
        if model is None:
            model, info = load_model(prefix)
        else:
            restore(make_checkpoint(model), prefix)
        yield prefix, model, info


def load_model(checkpoint_dir_or_path):
    """(DeepLab with restored weights, DatasetInfo) from a run directory (its
    latest checkpoint) or one checkpoint prefix in it. Bad paths -> InputError."""
    run_dir, prefix = _resolve(checkpoint_dir_or_path)
    config = read_deeplab_config(run_dir)
    model = DeepLab.from_config(config["model"])
    restore(make_checkpoint(model), prefix)
    return model, DatasetInfo.from_dict(config["dataset"], source=run_dir)
