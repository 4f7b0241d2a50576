"""Times README's main job from a fresh clone: dataset, training, eval, export.

Usage: python bench/quickstart.py [--workdir DIR] [--keep]

Clones this repository's HEAD into a new directory, points the dataset cache
there (so the synthetic set is generated, not reused), runs
`bash experiments/quickstart.sh` with this Python first on PATH, and prints the
time of each phase, the val mIOU with per-class IoU, and whether it met the
target (0.65 mIOU within 15 minutes). Installing the package is not timed.
Phases run from the script's `== ...` lines; dataset generation, inside the
training binary, from its first line to the converter's last.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_MIOU, TARGET_MINUTES = 0.65, 15.0
# (phase, what the line that starts it begins with), in order.
PHASES = (("start-up", "== train"), ("dataset", "Generating the synthetic dataset"),
          ("training", "wrote minival: "), ("eval", "== eval"), ("export", "== export"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where to clone (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its runs")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="quickstart_")
    clone = os.path.join(workdir, "deeplab-dpc")
    if os.path.exists(clone) or os.path.exists(os.path.join(workdir, "cache")):
        raise SystemExit(f"error: {workdir} already holds a quickstart; give a new --workdir")
    subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, check=True,
                            capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(workdir, "cache"),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    print(f"commit {commit}, clone {clone}, {os.cpu_count()} cores", flush=True)
    marks, start = {}, time.time()
    with subprocess.Popen(["bash", "experiments/quickstart.sh"], cwd=clone, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as proc:
        for line in proc.stdout:
            now = time.time() - start
            for phase, prefix in PHASES:
                if phase not in marks and line.startswith(prefix):
                    marks[phase] = now
            if line.startswith(("== ", "step ", "wrote SavedModel", "Generating", "Done")):
                print(f"[{now / 60:5.1f} min] {line.rstrip()}", flush=True)
    total = time.time() - start
    if proc.returncode:
        raise SystemExit(f"quickstart.sh failed with exit status {proc.returncode}")
    with open(os.path.join(clone, "runs", "quickstart", "eval", "metrics.json")) as f:
        metrics = json.load(f)

    print("\n| phase | minutes |\n| --- | --- |")
    order = [p for p, _ in PHASES if p in marks]
    for phase, end in zip(order, [marks[p] for p in order[1:]] + [total]):
        print(f"| {phase} | {(end - marks[phase]) / 60:.1f} |")
    print(f"| total (from the first command) | {total / 60:.1f} |")
    print("\n| class | IoU % |\n| --- | --- |")
    for name, iou in metrics["per_class_iou"].items():
        print(f"| {name} | {'absent' if iou is None else f'{100 * iou:.1f}'} |")
    met = metrics["miou"] >= TARGET_MIOU and total / 60 <= TARGET_MINUTES
    print(f"| **mIOU** | **{100 * metrics['miou']:.1f}** |\n")
    print(f"target {TARGET_MIOU:.2f} mIOU within {TARGET_MINUTES:.0f} min: "
          f"{'met' if met else 'NOT met'} ({metrics['miou']:.3f} in {total / 60:.1f} min)")
    if not (args.keep or args.workdir):
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
