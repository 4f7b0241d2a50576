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

import tensorflow as tf

from deeplab_dpc import files
from deeplab_dpc.data.datasets import DatasetInfo
from deeplab_dpc.errors import InputError
from deeplab_dpc.model import DeepLab

CONFIG_FILE = "model_config.json"
CHECKPOINT_NAME = "ckpt"
DEEPLAB = "DeepLab"  # `model_class` of DeepLab runs (and of run directories without one)


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
            raise InputError(f"checkpoint directory {run_dir} does not exist")
        raise InputError(f"{run_dir} is not a training run directory: no {CONFIG_FILE}")
    try:
        with tf.io.gfile.GFile(path) as f:
            config = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(config, dict) or not {"model", "dataset"} <= set(config):
        raise InputError(f"{path}: expected an object with 'model' and 'dataset'")
    return config


def write_run_config(run_dir, model, dataset_info, train_settings, model_class=DEEPLAB):
    """Writes `model_config.json` atomically (temp file, rename).

    A run directory belongs to one model: resuming with a different model
    (another cell, backbone or class count) is refused, because its
    checkpoints could not be restored into it.
    """
    config = {"model_class": model_class, "model": model.get_config(),
              "dataset": dataset_info.to_dict(), "train": train_settings}
    config = json.loads(json.dumps(config))  # tuples -> lists, as they will be read back
    path = os.path.join(run_dir, CONFIG_FILE)
    if tf.io.gfile.exists(path):
        old_config = read_run_config(run_dir)
        old = old_config["model"]
        changed = sorted(k for k in set(old) | set(config["model"])
                         if k != "name" and old.get(k) != config["model"].get(k))
        if old_config.get("model_class", DEEPLAB) != model_class:
            changed.insert(0, "model_class")
        if changed:
            raise InputError(
                f"{run_dir} holds a run of a different model (differs in "
                f"{', '.join(changed)}); use a new train_logdir", param="train_logdir")
    return files.write_json_atomically(path, config)


def run_dir(path):
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
        raise InputError(f"checkpoint {path} does not exist (expected a run directory or "
                         f"a checkpoint prefix such as <dir>/{CHECKPOINT_NAME}-1000)")
    return os.path.dirname(path), path


def restore(checkpoint, prefix):
    """Restores `checkpoint` from `prefix`; every object it holds must be found."""
    try:
        checkpoint.read(prefix).assert_existing_objects_matched().expect_partial()
    except (tf.errors.OpError, AssertionError, ValueError, IndexError, KeyError) as e:
        # A truncated data file surfaces as IndexError from the reader.
        raise InputError(f"cannot restore checkpoint {prefix}: {short_error(e)}") from None


def load_model(checkpoint_dir_or_path):
    """(DeepLab with restored weights, DatasetInfo) from a run directory (its
    latest checkpoint) or one checkpoint prefix in it. Bad paths -> InputError."""
    run_dir, prefix = _resolve(checkpoint_dir_or_path)
    config = read_run_config(run_dir)
    model_class = config.get("model_class", DEEPLAB)
    if model_class != DEEPLAB:
        raise InputError(f"{os.path.join(run_dir, CONFIG_FILE)}: the run trained a "
                         f"{model_class}, not a DeepLab model; only DeepLab runs load here")
    model = DeepLab.from_config(config["model"])
    restore(make_checkpoint(model), prefix)
    return model, DatasetInfo.from_dict(config["dataset"], source=run_dir)
