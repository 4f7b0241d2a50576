"""The analysis as PNGs (matplotlib, the optional `plots` extra), drawn from the
numbers in `analysis.json` alone."""
import os

from deeplab_dpc import files
from deeplab_dpc.analyze import diagram


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path):
    """Writes the figure through a temporary (a reader sees a whole PNG or none)."""
    fig.tight_layout()
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    _pyplot().close(fig)
    return path



def proxy_scores(a, path):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist([100 * s for s in a["proxy_scores"]], bins=20, color="#4c72b0")
    for b in a["baselines"]:
        ax.axvline(100 * b["score"], color="#c44e52", ls="--")
        ax.text(100 * b["score"], ax.get_ylim()[1] * 0.95, b["describe"][:24], rotation=90,
                va="top", ha="right", fontsize=7)
    ax.set_xlabel("proxy mIOU (%)")
    ax.set_ylabel("cells")
    ax.set_title(f"Proxy scores of {len(a['proxy_scores'])} cells (Figure 4a)")
    return save_png(fig, path)


def proxy_vs_rerank(a, path):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r in a["reranked"]:
        if r["proxy_score"] is None:
            continue
        colour = {"top": "#4c72b0", "spread": "#55a868"}.get(r["origin"], "#c44e52")
        ax.errorbar(100 * r["proxy_score"], 100 * r["search_mean"],
                    yerr=[[100 * (r["search_mean"] - r["search_min"])],
                          [100 * (r["search_max"] - r["search_mean"])]],
                    fmt="o", color=colour, capsize=3)
        if r["origin"] == "baseline":
            ax.annotate(r["describe"][:20], (100 * r["proxy_score"], 100 * r["search_mean"]),
                        fontsize=7, xytext=(4, 4), textcoords="offset points")
    s = a["spearman"]
    rho = "n/a" if s["rho"] is None else f"{s['rho']:.3f} (p = {s['p_value']:.2g})"
    ax.set_title(f"Proxy vs re-ranked, Spearman rho = {rho} (Figure 4b)", fontsize=10)
    ax.set_xlabel("proxy mIOU (%)")
    ax.set_ylabel("re-ranked mIOU on the search split (%), mean and range")
    return save_png(fig, path)


def score_vs_madds(a, path):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter([t["madds"] / 1e6 for t in a["search_trials"] if t["madds"] is not None],
               [100 * t["score"] for t in a["search_trials"] if t["madds"] is not None],
               s=12, color="#4c72b0", label="search")
    for b in a["baselines"]:
        if b["madds"] is not None:
            ax.scatter(b["madds"] / 1e6, 100 * b["score"], marker="*", s=90, color="#c44e52")
            ax.annotate(b["describe"][:20], (b["madds"] / 1e6, 100 * b["score"]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    front = a["pareto_front"]
    ax.plot([f["madds"] / 1e6 for f in front], [100 * f["score"] for f in front],
            drawstyle="steps-post", color="#dd8452", label="Pareto front")
    ax.set_xlabel("multiply-adds of the cell (M)")
    ax.set_ylabel("proxy mIOU (%)")
    ax.legend(fontsize=8)
    ax.set_title("Score against cost")
    return save_png(fig, path)


def branch_l1(a, path):
    plt = _pyplot()
    l1 = a["branch_l1"]["l1"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    labels = [n["label"] for n in a["best_cell"]["graph"]["nodes"] if n["id"].startswith("b")]
    ax.bar(range(len(l1)), l1, color="#4c72b0")
    ax.set_xticks(range(len(l1)), [label.split(":")[0] for label in labels])
    ax.set_ylabel("L1 norm into the concat projection")
    ax.set_title("Which branches the best cell uses (Figure 5b)", fontsize=10)
    return save_png(fig, path)


def write_all(a, output_dir, names):
    """Writes every figure the analysis has data for; returns {figure: path}."""
    written = {}
    targets = [("proxy_scores", proxy_scores), ("score_vs_madds", score_vs_madds)]
    if a["reranked"]:
        targets.append(("proxy_vs_rerank", proxy_vs_rerank))
    if a["branch_l1"]:
        targets.append(("branch_l1", branch_l1))
    for name, draw in targets:
        written[name] = draw(a, os.path.join(output_dir, names[name]))
    for name in ("best_cell", "worst_cell"):
        if a[name]:
            title = f"{'Best' if name == 'best_cell' else 'Worst'} cell: {a[name]['key'][:60]}"
            written[name] = save_png(diagram.draw(a[name]["graph"], title),
                                     os.path.join(output_dir, names[name]))
    return written
