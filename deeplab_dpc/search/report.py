"""What a study found: the top trials, counts by state, and exported cells.

`export_top` writes each of the top K cells as a reference-format JSON file (it
loads in the reference DeepLab unchanged) beside a flagfile that trains it end to
end with the settings of the run the feature cache came from, naming `--head=dpc`
and the cell explicitly, so the re-ranking step is one command per cell.
"""
import json
import os

from deeplab_dpc import files, spec
from deeplab_dpc.errors import InputError
from deeplab_dpc.search import heads as heads_lib
from deeplab_dpc.search.study import SEARCH_ORIGINS


def _row(trial):
    result = trial.result or {}
    return dict(id=trial.id, key=trial.key, state=trial.state, score=trial.score,
                madds=result.get("madds"), params=result.get("params"),
                origin=trial.origin, candidate=trial.candidate, seed=trial.seed,
                parent_key=trial.parent_key, cell=trial.cell,
                steps=result.get("steps"), wall_time_s=result.get("wall_time_s"),
                error=trial.error)


def report_json(study, top=10):
    """Settings, counts by state, the top trials and every trial (key, state, score, cell)."""
    trials = study.trials()
    seed = (study.settings or {}).get("sampler", {}).get("seed")
    # The top list ranks the search's own trials; baselines and repeats are in `trials`.
    done = sorted((t for t in trials if t.state == "done" and t.origin in SEARCH_ORIGINS
                   and (seed is None or t.seed == seed)), key=lambda t: (-t.score, t.id))
    collisions = sum(1 for c in study.candidates() if c[2] == "collision")
    return dict(study=study.path, settings=study.settings, counts=study.counts(),
                collisions=collisions, top=[_row(t) for t in done[:top]],
                trials=[_row(t) for t in trials])


def _count(n):
    """12.3K, 4.56M, 7.89B: counts from a 1x1 cell on a tiny cache to Xception's ASPP."""
    if n is None:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def format_report(report):
    counts = report["counts"]
    lines = [f"study {report['study']}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
             + f"; {report['collisions']} collisions"]
    if not report["top"]:
        lines.append("no finished trial yet")
        return "\n".join(lines)
    lines.append(f"{'rank':>4} {'trial':>5} {'mIOU':>7} {'MAdds':>8} {'params':>8}  cell")
    for rank, row in enumerate(report["top"], start=1):
        head = heads_lib.head_from_json(row["cell"])
        lines.append(f"{rank:>4} {row['id']:>5} {100 * row['score']:6.2f}% "
                     f"{_count(row['madds']):>8} {_count(row['params']):>8}  "
                     f"{heads_lib.describe(head)}")
    return "\n".join(lines)


# Keys of a run's TrainConfig that the train binary takes under the same flag name.
_TRAIN_FLAGS = (
    "dataset", "dataset_dir", "train_split", "train_crop_size", "train_batch_size",
    "min_scale_factor", "max_scale_factor", "scale_factor_step_size", "base_learning_rate",
    "learning_policy", "learning_power", "learning_rate_decay_step",
    "learning_rate_decay_factor", "training_number_of_steps", "slow_start_step",
    "slow_start_learning_rate", "momentum", "fine_tune_batch_norm", "sync_batch_norm",
    "top_k_percent_pixels", "hard_example_mining_step", "gradient_accumulation_steps",
    "mixed_precision", "save_interval_steps", "log_steps", "seed")
# DeepLab model fields -> train flags (the head and cell are the exported cell's).
_MODEL_FLAGS = {"backbone": "model_variant", "output_stride": "output_stride",
                "decoder_output_stride": "decoder_output_stride",
                "depth_multiplier": "depth_multiplier", "divisible_by": "divisible_by",
                "multi_grid": "multi_grid", "head_filters": "head_filters",
                "batch_norm_decay": "batch_norm_decay", "weight_decay": "weight_decay",
                "image_pooling_crop_size": "image_pooling_crop_size"}


def _flag(name, value):
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no{name}"
    if isinstance(value, (list, tuple)):
        return f"--{name}={','.join(map(str, value))}"
    return f"--{name}={value}"


def training_flags(cache_settings, cell_path, train_logdir):
    """Flag lines that train the cell at `cell_path` as the cache's source run trained."""
    train = dict(cache_settings.get("train") or {})
    backbone = cache_settings["backbone"]
    lines = [f"--train_logdir={train_logdir}", "--head=dpc",
             f"--dense_prediction_cell_json={cell_path}"]
    model = dict(train.get("model") or {})
    model.setdefault("backbone", backbone["model_variant"])
    model.setdefault("depth_multiplier", backbone["depth_multiplier"])
    model.setdefault("output_stride", backbone["output_stride"])
    model.setdefault("divisible_by", backbone.get("divisible_by"))
    for key, flag in _MODEL_FLAGS.items():
        if key == "multi_grid" and model.get(key):  # a repeated flag, as the reference's
            lines += [f"--multi_grid={rate}" for rate in model[key]]
        elif model.get(key) is not None:
            lines.append(_flag(flag, model[key]))
    dataset = cache_settings["dataset"]
    train.setdefault("dataset", dataset["name"])
    train.setdefault("dataset_dir", dataset["dataset_dir"])
    for key in _TRAIN_FLAGS:
        if train.get(key) is not None:
            lines.append(_flag(key, train[key]))
    source = cache_settings.get("source", {})
    if source.get("kind") == "checkpoint":
        # Re-ranking fine-tunes from the checkpoint the features came from (backbone
        # only: the head is new).
        lines += [f"--tf_initial_checkpoint={source['checkpoint']}", "--noinitialize_last_layer"]
    elif source.get("backbone_weights"):
        lines.append(f"--backbone_weights={source['backbone_weights']}")
    return lines


def export_top(study, k, output_dir, cache_settings, log=print):
    """Writes the top `k` done cells (`cell_{rank:02d}_{short id}.json`) and their
    training flagfiles (`train_{rank:02d}_{short id}.flags`) into `output_dir`; returns
    the paths."""
    files.check_output_dir(output_dir, "output_dir")
    if k < 1:
        raise InputError("export_top must be >= 1", param="export_top")
    done = study.counts()["done"]
    top = [t for t in study.top(done) if isinstance(t.cell, list)][:k]  # cells, not ASPP
    if not top:
        raise InputError(f"study {study.path} has no finished cell to export", param="study")
    written = []
    for rank, trial in enumerate(top, start=1):
        cell = spec.CellSpec.from_reference(trial.cell)
        stem = f"{rank:02d}_{cell.short_id()}"
        cell_path = os.path.abspath(os.path.join(output_dir, f"cell_{stem}.json"))
        flags_path = os.path.join(output_dir, f"train_{stem}.flags")
        header = [f"# Trains cell {cell.short_id()} (rank {rank} of study {study.path}: proxy "
                  f"mIOU {100 * trial.score:.2f}%, trial {trial.id}) end to end, with the",
                  "# settings of the run the feature cache was made from.",
                  f"# {heads_lib.describe(cell)}"]
        lines = training_flags(cache_settings, cell_path,
                               os.path.join("runs", f"rerank_{stem}"))
        files.write_atomically(cell_path, json.dumps(cell.to_reference(), indent=2) + "\n")
        files.write_atomically(flags_path, "\n".join(header + lines) + "\n")
        written += [cell_path, flags_path]
        log(f"rank {rank}: {cell_path} and {flags_path}")
    return written
