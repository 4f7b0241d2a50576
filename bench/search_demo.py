"""The paper's whole method on the synthetic set, on 2 CPU cores: a backbone that knows
no far context, its feature cache, a proxy learning curve, random search, re-ranking
with baselines, and the analysis.

Usage: python bench/search_demo.py [--workdir DIR] [--small] [--publish]

Every stage is a command a user would run (printed before it runs); rerunning the
script resumes where a killed run stopped, so the demo can run in parts. The run's
outputs stay in --workdir (default ~/deeplab_dpc_runs/search_demo[_small], outside the
work tree); --publish copies the study, analysis.json and the figures of a finished run
into experiments/search_demo/. The scale and its budget arithmetic are in BUILD_NOTES.
--small runs every stage at toy size (under 30 minutes) to check the pipeline.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, as the binaries below run it
PUBLISHED_DIR = os.path.join(ROOT, "experiments", "search_demo")
# Figure 6c's kind of bad cell: every branch cascaded after global pooling, so nothing
# spatial reaches the concat.
BAD_CELL = [{"op": "pyramid_pooling", "grid_size": [1, 1], "input": -1},
            {"kernel": 1, "op": "conv", "input": 0},
            {"kernel": 3, "rate": [6, 6], "op": "conv", "input": 0},
            {"kernel": 3, "rate": [1, 1], "op": "conv", "input": 1},
            {"kernel": 1, "op": "conv", "input": 2}]
ONE_BY_ONE = [{"kernel": 1, "op": "conv", "input": -1}]

# The pinned scale (BUILD_NOTES "The search demo" says why). --small: every stage, tiny.
SCALES = {
    "full": dict(backbone_steps=500, curve_steps=1500, curve_every=100, proxy_steps=1000,
                 trials=32, top_k=4, spread_k=4, seeds=2, noise_seeds=2, rerank_steps=250,
                 extras=("aspp", "published", "1x1", "BAD")),
    "small": dict(backbone_steps=60, curve_steps=200, curve_every=50, proxy_steps=200,
                  trials=6, top_k=2, spread_k=1, seeds=1, noise_seeds=1, rerank_steps=20,
                  extras=("aspp", "BAD")),
}


def run(stage, command, log):
    """Runs one binary as a user would; the stage's wall time."""
    line = " ".join(command)
    print(f"\n== {stage}: {line}", flush=True)
    started = time.time()
    with open(log, "a") as out:
        out.write(f"\n== {line}\n")
        out.flush()
        subprocess.run([sys.executable, "-m", *command], check=True, cwd=ROOT)
    return time.time() - started


def learning_curve(workdir, scale):
    """The published cell on the proxy, scored every `curve_every` steps (resumable)."""
    path = os.path.join(workdir, "learning_curve.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    from deeplab_dpc import files, spec
    from deeplab_dpc.search import proxy

    settings = proxy_settings(scale["curve_steps"])
    curve = proxy.learning_curve(spec.published_cell(), os.path.join(workdir, "cache"),
                                 settings, seed=0, every=scale["curve_every"],
                                 trial_dir=os.path.join(workdir, "curve_trial"))
    files.write_json_atomically(path, {"settings": settings.to_dict(), "curve": curve})
    return {"curve": curve}


def proxy_settings(steps):
    from deeplab_dpc.search.proxy import ProxySettings

    return ProxySettings(training_number_of_steps=steps, batch_size=8, base_learning_rate=0.05,
                         batch_norm_decay=0.9, dpc_filters=64, loss_resolution="logits",
                         save_interval_steps=250)


def search_flags(settings):
    """The search binary's flags for these proxy settings (one source of truth)."""
    return [f"--proxy_training_number_of_steps={settings.training_number_of_steps}",
            f"--proxy_batch_size={settings.batch_size}",
            f"--proxy_base_learning_rate={settings.base_learning_rate}",
            f"--proxy_batch_norm_decay={settings.batch_norm_decay}",
            f"--dpc_filters={settings.dpc_filters}",
            f"--proxy_loss_resolution={settings.loss_resolution}",
            f"--proxy_save_interval_steps={settings.save_interval_steps}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--publish", action="store_true",
                        help="copy the finished full run's results into experiments/")
    args = parser.parse_args()
    size = "small" if args.small else "full"
    scale = SCALES[size]
    workdir = os.path.abspath(args.workdir or os.path.expanduser(
        f"~/deeplab_dpc_runs/search_demo{'_small' if args.small else ''}"))
    os.makedirs(os.path.join(workdir, "cells"), exist_ok=True)
    log = os.path.join(workdir, "commands.log")
    cells = {"1x1": os.path.join(workdir, "cells", "one_by_one.json"),
             "BAD": os.path.join(workdir, "cells", "global_pool_cascade.json")}
    for name, cell in (("1x1", ONE_BY_ONE), ("BAD", BAD_CELL)):
        with open(cells[name], "w") as f:
            json.dump(cell, f)
    study = os.path.join(workdir, "study.sqlite")
    times = {}
    started = time.time()

    # 1. A backbone without far context: trained end to end under the 1x1 cell.
    times["backbone"] = run("backbone", [
        "deeplab_dpc.train", "--flagfile=experiments/quickstart.flags",
        f"--train_logdir={workdir}/backbone", f"--dense_prediction_cell_json={cells['1x1']}",
        f"--training_number_of_steps={scale['backbone_steps']}"], log)
    # 2. Its features of train and minival at half size (the run's scale).
    times["cache"] = run("cache", [
        "deeplab_dpc.cache_features", f"--checkpoint_dir={workdir}/backbone",
        f"--feature_cache_dir={workdir}/cache", "--splits=train,minival"], log)
    # 3. How many proxy steps: the published cell's learning curve.
    print(f"\n== learning curve: published cell, {scale['curve_steps']} proxy steps, scored "
          f"every {scale['curve_every']}", flush=True)
    t = time.time()
    curve = learning_curve(workdir, scale)["curve"]
    times["learning curve"] = time.time() - t
    for step, miou in curve:
        print(f"  step {step:>5}: mIOU {100 * miou:.2f}%")
    best = max(m for _, m in curve)
    reached = next(s for s, m in curve if m >= 0.95 * best)
    print(f"  95% of the best score first at step {reached}; the search trains "
          f"{scale['proxy_steps']} steps")
    # 4. Random search on the proxy.
    search = ["deeplab_dpc.search", f"--study={study}", f"--feature_cache_dir={workdir}/cache",
              f"--num_trials={scale['trials']}", *search_flags(proxy_settings(scale["proxy_steps"])),
              "--near_best_fraction=0.25", "--near_best_top_k=5", "--seed=0"]
    times["search"] = run("search", search, log)
    # 5. Re-rank the top, a spread of the rest and the baselines end to end.
    schedule = os.path.join(workdir, "rerank.flags")
    with open(schedule, "w") as f:
        f.write(f"--training_number_of_steps={scale['rerank_steps']}\n"
                f"--save_interval_steps={max(scale['rerank_steps'] // 5, 1)}\n--log_steps=25\n")
    extras = ",".join(cells.get(e, e) for e in scale["extras"])
    times["re-rank"] = run("re-rank", [
        "deeplab_dpc.rerank", f"--study={study}", f"--top_k={scale['top_k']}",
        f"--spread_k={scale['spread_k']}", f"--extra_cells={extras}",
        f"--num_seeds={scale['seeds']}", f"--noise_floor_seeds={scale['noise_seeds']}",
        f"--train_flagfile={schedule}", f"--rerank_dir={workdir}/reranks"], log)
    # 6. The analysis.
    times["analysis"] = run("analysis", ["deeplab_dpc.analyze", f"--study={study}",
                                         f"--output_dir={workdir}/analysis"], log)
    total = time.time() - started
    print(f"\n## Search demo ({size}), this invocation\n\n| stage | minutes |\n| --- | --- |")
    for stage, seconds in times.items():
        print(f"| {stage} | {seconds / 60:.1f} |")
    print(f"| total | {total / 60:.1f} |")
    if args.publish:
        if args.small:
            raise SystemExit("error: --publish takes the full run's results, not --small's")
        os.makedirs(PUBLISHED_DIR, exist_ok=True)
        shutil.copy(study, os.path.join(PUBLISHED_DIR, "study.sqlite"))
        shutil.copy(os.path.join(workdir, "learning_curve.json"), PUBLISHED_DIR)
        for name in os.listdir(os.path.join(workdir, "analysis")):
            shutil.copy(os.path.join(workdir, "analysis", name), PUBLISHED_DIR)
        print(f"published into {PUBLISHED_DIR}")


if __name__ == "__main__":
    main()
