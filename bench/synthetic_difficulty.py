"""Is the synthetic set a real test of the head? 1x1 vs ASPP vs the published DPC.

Usage: python bench/synthetic_difficulty.py [--seeds 0 1 2] [--steps 450] [--jobs 2]
           [--heads 1x1 aspp dpc] [--output_dir runs/synthetic_difficulty]

Trains each head with `python -m deeplab_dpc.train` at one fixed budget: the
quickstart's flagfile (MobileNet-v2 depth 0.5, whole scenes at 257x513, batch 8,
from random weights) but 450 steps unless --steps, once per seed. Evaluates each
on val at scale 0.5 with `python -m deeplab_dpc.eval`, and prints per-run and
per-head tables. The context classes are road/water and car/boat: they look
alike up close and only the lane-end gates, up to half the image away, tell them
apart. Finished runs are reused, and a killed run resumes from its last
checkpoint. `--jobs N` trains N runs at a time, for machines with cores to spare:
on 2 cores, two at a time took as long in all as one after the other.
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGFILE = os.path.join(ROOT, "experiments", "quickstart.flags")
ONE_BY_ONE = [{"kernel": 1, "op": "conv", "input": -1}]
HEADS = {
    "1x1": lambda out: ["--head=dpc", f"--dense_prediction_cell_json={_one_by_one(out)}"],
    "aspp": lambda out: ["--head=aspp", "--atrous_rates=6", "--atrous_rates=12",
                         "--atrous_rates=18"],
    "dpc": lambda out: ["--head=dpc"],  # the published cell
}
CONTEXT = ("road", "water", "car", "boat")


def _one_by_one(out):
    return os.path.join(out, "one_by_one_cell.json")


def _binary(log_path, module, *args):
    """Runs a binary, its output appended to `log_path` (follow a run with tail -f)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    with open(log_path, "a") as log:
        result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    if result.returncode:
        raise SystemExit(f"{module} failed (exit {result.returncode}); see {log_path}")


def run_one(out, head, seed, steps, dataset_dir):
    """Trains and evaluates one (head, seed); returns its metrics.json content."""
    run_dir = os.path.join(out, f"{head}_seed{seed}")
    metrics_path = os.path.join(run_dir, "eval", "metrics.json")
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            metrics = json.load(f)
        if metrics["step"] == steps:
            return metrics, None
    start = time.time()
    log = run_dir + ".log"
    _binary(log, "deeplab_dpc.train", f"--flagfile={FLAGFILE}", f"--train_logdir={run_dir}",
            f"--seed={seed}", f"--training_number_of_steps={steps}",
            f"--save_interval_steps={max(1, steps // 3)}", f"--dataset_dir={dataset_dir}",
            *HEADS[head](out))
    _binary(log, "deeplab_dpc.eval", f"--checkpoint_dir={run_dir}",
            f"--eval_logdir={os.path.dirname(metrics_path)}", "--eval_scales=0.5",
            "--max_number_of_evaluations=1")
    with open(metrics_path) as f:
        return json.load(f), time.time() - start


def confusion(metrics, a, b):
    """Share of `a`'s labelled pixels predicted as `b`."""
    names = list(metrics["per_class_iou"])
    row = metrics["confusion_matrix"][names.index(a)]
    return row[names.index(b)] / max(sum(row), 1)


def row_values(metrics):
    iou = metrics["per_class_iou"]
    return [metrics["miou"]] + [iou[c] for c in CONTEXT] + [
        confusion(metrics, "car", "boat"), confusion(metrics, "boat", "car")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=450)
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at a time")
    parser.add_argument("--dataset_dir", help="synthetic TFRecords (default: the binaries' "
                        "cache, generated first if missing)")
    parser.add_argument("--output_dir", default=os.path.join(ROOT, "runs",
                                                             "synthetic_difficulty"))
    args = parser.parse_args()
    # The binaries run in the repository root: hand them absolute paths.
    args.output_dir = os.path.abspath(args.output_dir)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(_one_by_one(args.output_dir), "w") as f:  # before any run reads it
        json.dump(ONE_BY_ONE, f)
    if not args.dataset_dir:  # once, before runs that would each try to generate it
        sys.path.insert(0, ROOT)
        from deeplab_dpc.data import synthetic

        args.dataset_dir = synthetic.ensure_dataset(synthetic.default_dataset_dir())
    args.dataset_dir = os.path.abspath(args.dataset_dir)
    columns = ("mIOU",) + CONTEXT + ("car->boat", "boat->car")
    print(f"{args.steps} steps, seeds {args.seeds}; val at scale 0.5; IoU and confusion in %")
    print("| head | seed | " + " | ".join(columns) + " | minutes |")
    print("|" + " --- |" * (len(columns) + 3))
    runs = [(head, seed) for seed in args.seeds for head in args.heads]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run_one, args.output_dir, head, seed, args.steps,
                               args.dataset_dir): (head, seed) for head, seed in runs}
        for future in concurrent.futures.as_completed(futures):
            head, seed = futures[future]
            metrics, seconds = future.result()
            values = row_values(metrics)
            results[head, seed] = values
            took = "reused" if seconds is None else f"{seconds / 60:.1f}"
            print(f"| {head} | {seed} | " + " | ".join(f"{100 * v:.1f}" for v in values)
                  + f" | {took} |", flush=True)
    print("\nMean (min-max) over seeds")
    print("| head | " + " | ".join(columns) + " |")
    print("|" + " --- |" * (len(columns) + 1))
    for head in args.heads:
        a = 100 * np.array([results[head, seed] for seed in args.seeds])
        print(f"| {head} | " + " | ".join(
            f"{m:.1f} ({lo:.1f}-{hi:.1f})" for m, lo, hi in zip(a.mean(0), a.min(0), a.max(0)))
            + " |")


if __name__ == "__main__":
    main()
