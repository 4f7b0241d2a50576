"""What a study says: every number behind the figures in `analysis.json`, and the PNGs.

- proxy scores of the search (Figure 4a), baselines marked;
- proxy score against the re-ranked score on the search split, with Spearman's rho,
  its p-value and a bootstrap interval (Figure 4b);
- score against multiply-adds with the Pareto front;
- the best and the worst cell as diagrams (Figures 5a and 6);
- the L1 norm of each branch's weights into the concat projection of the best
  re-ranked cell (Figure 5b): which branches the trained cell leans on;
- the noise floor: one cell's proxy score over several seeds, beside the spread of the
  re-ranked cells' proxy scores. Where the floor is larger, the proxy cannot rank them.
"""
import json
import os

import numpy as np

from deeplab_dpc import files
from deeplab_dpc.analyze import diagram, statistics
from deeplab_dpc.errors import InputError
from deeplab_dpc.search import heads as heads_lib
from deeplab_dpc.search.study import SEARCH_ORIGINS

ANALYSIS_FILE = "analysis.json"
FIGURES = {"proxy_scores": "proxy_scores.png", "proxy_vs_rerank": "proxy_vs_rerank.png",
           "score_vs_madds": "score_vs_madds.png", "best_cell": "best_cell.png",
           "worst_cell": "worst_cell.png", "branch_l1": "best_cell_branch_l1.png"}


def _trial(t):
    result = t.result or {}
    return {"id": t.id, "key": t.key, "origin": t.origin, "seed": t.seed, "score": t.score,
            "madds": result.get("madds"), "params": result.get("params"), "cell": t.cell,
            "describe": heads_lib.describe(heads_lib.head_from_json(t.cell))}


def _schedule(study, schedule):
    """The re-rank schedule to analyse: the one named, else the one with most done runs."""
    rows = study.conn.execute("SELECT schedule, COUNT(*) FROM reranks WHERE state = 'done' "
                              "GROUP BY schedule ORDER BY COUNT(*) DESC, schedule").fetchall()
    if schedule is None:
        return rows[0][0] if rows else None
    if schedule not in {r[0] for r in rows}:
        raise InputError(f"study {study.path} has no finished re-rank run of schedule "
                         f"{schedule}", param="schedule")
    return schedule


def _reranked(study, schedule, proxy):
    if schedule is None:
        return []
    out = []
    for row in study.conn.execute(
            "SELECT key, origin, runs, search_mean, search_min, search_max, val_mean, val_min, "
            "val_max FROM rerank_summary WHERE schedule = ? ORDER BY search_mean DESC",
            (schedule,)):
        item = dict(zip(("key", "origin", "runs", "search_mean", "search_min", "search_max",
                         "val_mean", "val_min", "val_max"), row))
        item["proxy_score"] = proxy.get(item["key"], {}).get("score")
        item["madds"] = proxy.get(item["key"], {}).get("madds")
        cell, run = study.conn.execute(
            "SELECT cell, run_dir FROM reranks WHERE key = ? AND schedule = ? AND state = "
            "'done' ORDER BY seed LIMIT 1", (item["key"], schedule)).fetchone()
        item["cell"], item["run_dir"] = json.loads(cell), run
        item["describe"] = heads_lib.describe(heads_lib.head_from_json(item["cell"]))
        out.append(item)
    return out


def branch_l1(run_dir):
    """L1 norm of each branch's block of rows in the concat projection's 1x1 kernel of
    the run's (DPC) model: [sum |w|] per branch, in branch order."""
    from deeplab_dpc import run_dir as run_dir_lib

    model, _ = run_dir_lib.load_model(run_dir)
    if model.head != "dpc":
        raise InputError(f"{run_dir}: not a dense prediction cell")
    kernel = np.abs(model.head_layer.projection.conv.kernel.numpy())[0, 0]
    blocks = np.split(kernel, len(model.cell.branches), axis=0)
    return [float(block.sum()) for block in blocks]


def noise_floor(study, search):
    """The proxy scores of the cell repeated at most seeds (the study's seed and the
    repeats'), with their spread; None without two scores of one cell."""
    repeats = [t for t in study.trials(states=("done",)) if t.origin == "repeat"]
    by_key = {}
    for t in repeats:
        by_key.setdefault(t.key, []).append(t)
    if not by_key:
        return None
    key = max(by_key, key=lambda k: (len(by_key[k]), -min(t.id for t in by_key[k])))
    seeds = [t.seed for t in by_key[key]]
    scores = [t.score for t in by_key[key]]
    first = next((t for t in search if t["key"] == key), None)
    if first is not None:
        seeds.insert(0, first["seed"])
        scores.insert(0, first["score"])
    spread = statistics.spread(scores)
    return None if spread is None else {"key": key, "seeds": seeds, "scores": scores, **spread}


def analyze(study, output_dir, schedule=None, bootstrap_samples=2000, seed=0, plots=True):
    """Computes everything, writes `analysis.json` and (with `plots`) the figures into
    `output_dir`; returns the analysis dict."""
    files.check_output_dir(output_dir, "output_dir")
    seed_of_study = study.settings["sampler"]["seed"]
    trials = [_trial(t) for t in study.trials(states=("done",), seed=seed_of_study)]
    search = [t for t in trials if t["origin"] in SEARCH_ORIGINS]
    if not search:
        raise InputError(f"study {study.path} has no finished search trial", param="study")
    baselines = [t for t in trials if t["origin"] == "baseline"]
    by_key = {t["key"]: t for t in trials}
    schedule = _schedule(study, schedule)
    reranked = _reranked(study, schedule, by_key)
    paired = [r for r in reranked if r["proxy_score"] is not None]
    x = [r["proxy_score"] for r in paired]
    y = [r["search_mean"] for r in paired]
    rho, p = statistics.spearman(x, y)
    interval = statistics.bootstrap_interval(x, y, bootstrap_samples, seed=seed)
    # Baselines (a deliberately bad cell, say) widen the range; the search's cells alone:
    found = [r for r in paired if r["origin"] != "baseline"]
    rho_found, p_found = statistics.spearman([r["proxy_score"] for r in found],
                                             [r["search_mean"] for r in found])
    costed = [t for t in search + baselines if t["madds"] is not None]
    front = statistics.pareto_front([t["madds"] for t in costed], [t["score"] for t in costed])
    cells = [t for t in search if isinstance(t["cell"], list)]
    ranked = sorted(cells, key=lambda t: (-t["score"], t["id"]))
    best_rerank = next((r for r in reranked if isinstance(r["cell"], list)), None)
    best = best_rerank or (ranked[0] if ranked else None)
    worst = ranked[-1] if ranked else None
    floor = noise_floor(study, search)
    proxy_spread = statistics.spread(x)
    verdict = None
    if floor and proxy_spread:  # both need two values or more
        verdict = ("the proxy cannot rank the re-ranked cells: its noise floor (std "
                   f"{floor['std']:.4f} over {floor['n']} seeds) is larger than the spread of "
                   f"their proxy scores (std {proxy_spread['std']:.4f})"
                   if floor["std"] >= proxy_spread["std"] else
                   f"the spread of the re-ranked cells' proxy scores (std "
                   f"{proxy_spread['std']:.4f}) exceeds the noise floor (std "
                   f"{floor['std']:.4f} over {floor['n']} seeds)")
    analysis = {
        "study": study.path, "settings": study.settings, "schedule": schedule,
        "counts": study.counts(),
        "proxy_scores": [t["score"] for t in search],
        "search_trials": search, "baselines": baselines,
        "reranked": reranked,
        "spearman_search_cells": {"rho": rho_found, "p_value": p_found, "n": len(found)},
        "spearman": {"rho": rho, "p_value": p, "n": len(paired),
                     "bootstrap_interval_95": interval, "bootstrap_samples": bootstrap_samples,
                     "pairs": [{"key": r["key"], "proxy": r["proxy_score"],
                                "reranked": r["search_mean"]} for r in paired]},
        "pareto_front": [{"key": costed[i]["key"], "madds": costed[i]["madds"],
                          "score": costed[i]["score"]} for i in front],
        "best_cell": None if best is None else {
            "key": best["key"], "cell": best["cell"], "describe": best["describe"],
            "chosen_by": "re-rank" if best_rerank else "proxy",
            "graph": diagram.cell_graph(best["cell"])},
        "worst_cell": None if worst is None else {
            "key": worst["key"], "cell": worst["cell"], "score": worst["score"],
            "graph": diagram.cell_graph(worst["cell"])},
        "branch_l1": None,
        "noise_floor": floor, "reranked_proxy_spread": proxy_spread, "verdict": verdict,
        "figures": {},
    }
    if best_rerank and os.path.exists(best_rerank["run_dir"]):
        analysis["branch_l1"] = {"run_dir": best_rerank["run_dir"],
                                 "l1": branch_l1(best_rerank["run_dir"])}
    files.makedirs(output_dir)
    if plots:
        from deeplab_dpc.analyze import figures

        analysis["figures"] = figures.write_all(analysis, output_dir, FIGURES)
    files.write_json_atomically(os.path.join(output_dir, ANALYSIS_FILE), analysis)
    return analysis


def format_summary(analysis):
    s = analysis["spearman"]
    lines = [f"{len(analysis['search_trials'])} search trials, {len(analysis['reranked'])} "
             "re-ranked cells"]
    if s["rho"] is not None:
        low_high = s["bootstrap_interval_95"]
        interval = f", 95% bootstrap [{low_high[0]:.3f}, {low_high[1]:.3f}]" if low_high else ""
        lines.append(f"Spearman rho proxy vs re-rank {s['rho']:.3f} (p = {s['p_value']:.3g}, "
                     f"n = {s['n']}{interval})")
    if analysis["verdict"]:
        lines.append(analysis["verdict"])
    if analysis["best_cell"]:
        lines.append(f"best cell ({analysis['best_cell']['chosen_by']}): "
                     f"{analysis['best_cell']['describe']}")
    return "\n".join(lines)

