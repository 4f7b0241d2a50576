"""Figure 3b at small scale: does the proxy rank cells as end-to-end training does?

Usage: python bench/proxy_fidelity.py [--feature_cache_dir DIR] [--workdir DIR] [--small]

The 31 cells made of non-empty subsets of ASPP's five branches (1x1, separable 3x3 at
rates 6, 12 and 18, image pooling; every branch on the backbone's features) all train on
the proxy; 12 of them, fixed below before any result and spread over the subset sizes,
also train end to end, on the schedule of the run the cache came from (as `rerank`
does). Prints both scores and Spearman's rho between them. Everything lives in one study
(`<workdir>/fidelity.sqlite`), so a killed run resumes. The default cache is the search
demo's (bench/search_demo.py), at the demo's proxy settings.
"""
import argparse
import itertools
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from search_demo import proxy_settings  # noqa: E402 (the demo's settings, beside us)
BRANCHES = ("1x1", "r6", "r12", "r18", "pool")
# Trained end to end too: chosen before any result, 2-3 of each subset size.
END_TO_END = (("1x1",), ("r12",), ("pool",), ("1x1", "pool"), ("r6", "r18"), ("r12", "pool"),
              ("1x1", "r6", "pool"), ("r6", "r12", "r18"), ("1x1", "r18", "pool"),
              ("1x1", "r6", "r12", "r18"), ("r6", "r12", "r18", "pool"), BRANCHES)
SMALL_END_TO_END = (("1x1",), ("pool",), ("1x1", "pool"), BRANCHES)


def cell(subset):
    from deeplab_dpc import spec

    ops = {"1x1": spec.Conv1x1(), "r6": spec.SeparableConv(6, 6),
           "r12": spec.SeparableConv(12, 12), "r18": spec.SeparableConv(18, 18),
           "pool": spec.PyramidPooling(1, 1)}
    return spec.CellSpec(tuple(spec.Branch(-1, ops[name]) for name in subset))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feature_cache_dir", help="default: the search demo's cache "
                        "(its --small one with --small)")
    parser.add_argument("--workdir", help="default: ~/deeplab_dpc_runs/proxy_fidelity[_small]")
    parser.add_argument("--proxy_steps", type=int, default=1000)
    parser.add_argument("--end_to_end_steps", type=int, default=250)
    parser.add_argument("--small", action="store_true",
                        help="subsets of at most 2 branches, 4 end to end, few steps")
    args = parser.parse_args()
    suffix = "_small" if args.small else ""
    args.feature_cache_dir = args.feature_cache_dir or os.path.expanduser(
        f"~/deeplab_dpc_runs/search_demo{suffix}/cache")
    args.workdir = args.workdir or os.path.expanduser(f"~/deeplab_dpc_runs/proxy_fidelity{suffix}")
    if args.small:
        args.proxy_steps, args.end_to_end_steps = min(args.proxy_steps, 100), min(
            args.end_to_end_steps, 10)
    from deeplab_dpc.analyze import statistics
    from deeplab_dpc.rerank import runs, selection
    from deeplab_dpc.search import proxy, workers
    from deeplab_dpc.search.sampler import SamplerSettings

    os.makedirs(args.workdir, exist_ok=True)
    subsets = [s for n in range(1, 6) for s in itertools.combinations(BRANCHES, n)
               if not args.small or n <= 2 or s == BRANCHES]
    chosen = SMALL_END_TO_END if args.small else END_TO_END
    study_path = os.path.join(args.workdir, "fidelity.sqlite")
    config = workers.SearchConfig(
        study_path, args.feature_cache_dir, len(subsets), proxy_settings(args.proxy_steps),
        SamplerSettings(num_branches=1, near_best_fraction=0.0, seed=0))
    study = workers.open_study(config, proxy.as_cache(args.feature_cache_dir))
    # Counted as the study's own trials (origin "subset"), so the worker draws nothing else.
    selection.add_proxy_trials(study, [(cell(s), 0) for s in subsets], "subset")
    print(f"proxy: {len(subsets)} cells of ASPP's branches, {args.proxy_steps} steps", flush=True)
    workers.run_worker(config)
    scores = {t.key: t.score for t in study.trials(states=("done",))}
    from deeplab_dpc.cache_features.format import FeatureCache

    cache = FeatureCache(args.feature_cache_dir)
    flagfile = os.path.join(args.workdir, "end_to_end.flags")
    with open(flagfile, "w") as f:
        f.write(f"--training_number_of_steps={args.end_to_end_steps}\n"
                f"--save_interval_steps={max(args.end_to_end_steps // 5, 1)}\n")
    schedule = runs.make_schedule(cache.settings, flagfile)
    candidates = [selection.Candidate(cell(s).canonical_key(), cell(s), "baseline")
                  for s in chosen]
    runs.add_runs(study, candidates, [0], schedule, os.path.join(args.workdir, "runs"))
    print(f"end to end: {len(chosen)} cells, {args.end_to_end_steps} steps", flush=True)
    rows = runs.run_all(study, schedule, study.settings["proxy"]["search_split"],
                        cache.image_scale, os.path.join(args.workdir, "cells"))
    end_to_end = {r["key"]: r["search_miou"] for r in rows if r["state"] == "done"}
    print("\n## Proxy fidelity: subsets of ASPP's branches\n")
    print("| branches | proxy mIOU % | end-to-end mIOU % |\n| --- | --- | --- |")
    for s in subsets:
        key = cell(s).canonical_key()
        e2e = end_to_end.get(key)
        proxy_score = scores.get(key)
        print(f"| {'+'.join(s)} | {'failed' if proxy_score is None else f'{100 * proxy_score:.2f}'} | "
              f"{'' if e2e is None else f'{100 * e2e:.2f}'} |")
    paired = [k for k in end_to_end if k in scores]
    rho, p = statistics.spearman([scores[k] for k in paired], [end_to_end[k] for k in paired])
    interval = statistics.bootstrap_interval([scores[k] for k in paired],
                                             [end_to_end[k] for k in paired])
    print(f"\nSpearman rho over {len(paired)} cells: "
          f"{'n/a' if rho is None else f'{rho:.3f} (p = {p:.3g})'}"
          f"{'' if not interval else f', 95% bootstrap [{interval[0]:.3f}, {interval[1]:.3f}]'}")
    study.close()


if __name__ == "__main__":
    main()
