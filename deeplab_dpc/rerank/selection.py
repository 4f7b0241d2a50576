"""Which cells a re-rank fine-tunes, and the proxy trials they still need.

The proxy's top K; K' more spread evenly over the rest of its score range, since a
rank correlation measured on the top few alone is range-restricted and says little;
and baselines (ASPP, the published cell, files), which get proxy trials too so that
they sit on both axes of the proxy-vs-re-rank comparison. The noise floor is one
cell's proxy trial repeated at other seeds (origin `repeat`).
"""
import dataclasses

import numpy as np

from deeplab_dpc import files, spec
from deeplab_dpc.errors import InputError
from deeplab_dpc.search import heads as heads_lib
from deeplab_dpc.search.study import SEARCH_ORIGINS



def baseline_heads():
    """The named baselines of `--extra_cells`."""
    return {"aspp": heads_lib.AsppHead((6, 12, 18), True),
            "published": spec.published_cell(),
            "1x1": spec.CellSpec((spec.Branch(-1, spec.Conv1x1()),))}


def parse_extra(name):
    """A named baseline or a JSON file (a reference cell, or an ASPP head object)."""
    named = baseline_heads()
    if name in named:
        return named[name]
    if not name.endswith(".json"):
        raise InputError(f"extra_cells: {name!r} is neither {', '.join(named)} nor a .json "
                         "file", param="extra_cells")
    try:
        return heads_lib.head_from_json(files.read_json(name, "cell file"))
    except InputError as e:
        raise InputError(f"extra_cells: {e}" if name in str(e) else f"{name}: {e}",
                         param="extra_cells") from None


@dataclasses.dataclass(frozen=True)
class Candidate:
    key: str
    head: object  # spec.CellSpec or heads.AsppHead
    origin: str  # top, spread, baseline
    trial_id: int = None  # its proxy trial at the study's seed (None: not run yet)
    proxy_score: float = None


def search_ranking(study):
    """Finished search trials at the study's seed, best first."""
    seed = study.settings["sampler"]["seed"]
    done = [t for t in study.trials(states=("done",), seed=seed) if t.origin in SEARCH_ORIGINS]
    return sorted(done, key=lambda t: (-t.score, t.id))


def spread_indices(n, k):
    """k indices spread evenly over range(n) below its first (which sits next to the
    top), the last included: n = 28, k = 4 -> 7, 14, 20, 27."""
    if n == 0 or k == 0:
        return []
    return sorted({int(i) for i in np.linspace(0, n - 1, min(k, n) + 1)[1:].round()})


def choose(study, top_k, spread_k=0, extras=()):
    """The candidates: top, spread, then baselines not already chosen."""
    ranked = search_ranking(study)
    if not ranked:
        raise InputError(f"study {study.path} has no finished search trial to re-rank",
                         param="study")
    chosen = [Candidate(t.key, heads_lib.head_from_json(t.cell), "top", t.id, t.score)
              for t in ranked[:top_k]]
    rest = ranked[top_k:]
    chosen += [Candidate(rest[i].key, heads_lib.head_from_json(rest[i].cell), "spread",
                         rest[i].id, rest[i].score) for i in spread_indices(len(rest), spread_k)]
    seed = study.settings["sampler"]["seed"]
    trials = {t.key: t for t in study.trials(seed=seed)}
    for name in extras:
        head = parse_extra(name)
        key = heads_lib.head_key(head)
        if any(c.key == key for c in chosen):
            continue
        trial = trials.get(key)
        done = trial is not None and trial.state == "done"
        chosen.append(Candidate(key, head, "baseline", trial.id if done else None,
                                trial.score if done else None))
    return chosen


def add_proxy_trials(study, heads_and_seeds, origin):
    """Pending trials for (head, seed) pairs the study lacks (a worker then trains them);
    returns how many were added."""
    added = 0
    with study.transaction() as conn:
        held = set(conn.execute("SELECT key, seed FROM trials").fetchall())
        for head, seed in heads_and_seeds:
            key = heads_lib.head_key(head)
            if (key, seed) not in held:
                study.insert_trial(conn, key, seed, heads_lib.head_to_json(head), origin)
                held.add((key, seed))
                added += 1
    return added
