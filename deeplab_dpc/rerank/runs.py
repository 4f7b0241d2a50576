"""End-to-end runs of the chosen cells, recorded in the study.

Every candidate trains on one schedule: the flags of the run the feature cache came
from (its data, crop, steps, learning rate...), starting from that run's checkpoint
with a fresh head (`--noinitialize_last_layer`), then the user's train flagfile.
Each (cell, seed) is an ordinary run directory made by `python -m deeplab_dpc.train`
(a child process, killed with us, resuming from its checkpoints when rerun), then
evaluated on the search split (the cell is chosen by it) and on val (only reported).
A row of `reranks` is keyed by (key, seed, schedule hash) and never changes once done.
"""
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time

from deeplab_dpc import files
from deeplab_dpc.errors import InputError
from deeplab_dpc.progress import kill_point
from deeplab_dpc.search import heads as heads_lib
from deeplab_dpc.search import report
from deeplab_dpc.search.study import make_owner, owner_is_dead

# Flags a schedule leaves to each run.
_PER_RUN = ("--train_logdir=", "--head=", "--dense_prediction_cell_json=", "--seed=",
            "--atrous_rates=", "--add_image_level_feature", "--noadd_image_level_feature")


@dataclasses.dataclass(frozen=True)
class Schedule:
    flags: tuple  # training flags every candidate shares
    hash: str


def make_schedule(cache_settings, train_flagfile=None):
    """The shared training flags: the cache's source run's, then `train_flagfile`
    (e.g. fewer steps). The hash covers the flags and the flagfile's text."""
    flags = [f for f in report.training_flags(cache_settings, "cell.json", "run")
             if not f.startswith(_PER_RUN)]
    if train_flagfile:
        if not os.path.isfile(train_flagfile):
            raise InputError(f"train_flagfile {train_flagfile} does not exist",
                             param="train_flagfile")
        with open(train_flagfile, encoding="utf-8") as f:
            # Its flags are taken in (not the file's path), so that an edit during a
            # re-rank cannot change runs recorded under the old hash.
            lines = [line.strip() for line in f if line.strip()
                     and not line.strip().startswith("#")]
        if any(line.startswith(_PER_RUN) for line in lines):
            raise InputError(f"train_flagfile {train_flagfile}: the head, cell, seed and "
                             "train_logdir are set per run; give the schedule only",
                             param="train_flagfile")
        if any(not line.startswith("--") or line.startswith("--flagfile") for line in lines):
            raise InputError(f"train_flagfile {train_flagfile}: one --flag=value a line "
                             "(no nested --flagfile)", param="train_flagfile")
        flags += lines
    digest = hashlib.sha256(json.dumps(flags).encode()).hexdigest()[:16]
    return Schedule(tuple(flags), digest)


def head_flags(head, cell_path):
    if isinstance(head, heads_lib.AsppHead):
        return (["--head=aspp"] + [f"--atrous_rates={r}" for r in head.atrous_rates]
                + ["--add_image_level_feature" if head.image_pooling
                   else "--noadd_image_level_feature"])
    return ["--head=dpc", f"--dense_prediction_cell_json={cell_path}"]


def run_name(head, seed):
    """`<cell short id>_seed<seed>`, or `aspp_6_12_18_pool_seed<seed>`."""
    if isinstance(head, heads_lib.AsppHead):
        stem = "aspp_" + "_".join(map(str, head.atrous_rates)) + (
            "_pool" if head.image_pooling else "")
    else:
        stem = head.short_id()
    return f"{stem}_seed{seed}"


def add_runs(study, candidates, seeds, schedule, rerank_dir):
    """Pending rows for every (candidate, seed) the study lacks under `schedule`."""
    with study.transaction() as conn:
        conn.execute("INSERT OR IGNORE INTO schedules (hash, flags, created) VALUES (?, ?, ?)",
                     (schedule.hash, json.dumps(list(schedule.flags)), time.time()))
        for c in candidates:
            for seed in seeds:
                run_dir = os.path.join(rerank_dir, schedule.hash, run_name(c.head, seed))
                conn.execute(
                    "INSERT OR IGNORE INTO reranks (key, seed, schedule, origin, cell, run_dir, "
                    "state, created) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
                    (c.key, seed, schedule.hash, c.origin,
                     json.dumps(heads_lib.head_to_json(c.head)), run_dir, time.time()))


_COLUMNS = ("id", "key", "seed", "schedule", "origin", "cell", "run_dir", "state",
            "search_miou", "val_miou", "result", "error", "owner", "created", "finished")


def rows(study, schedule=None):
    query, args = "SELECT * FROM reranks", []
    if schedule:
        query, args = query + " WHERE schedule = ?", [schedule]
    return [dict(zip(_COLUMNS, r)) for r in study.conn.execute(query + " ORDER BY id", args)]


def claim(study, schedule, owner):
    """The next run for `owner`: one whose owner died (resumed from its checkpoints),
    else a pending one; None when none is left."""
    with study.transaction() as conn:
        for row in conn.execute("SELECT id, owner FROM reranks WHERE schedule = ? AND "
                                "state = 'running' ORDER BY id", (schedule,)).fetchall():
            if owner_is_dead(row[1]):
                break
        else:
            row = conn.execute("SELECT id FROM reranks WHERE schedule = ? AND state = "
                               "'pending' ORDER BY id LIMIT 1", (schedule,)).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE reranks SET state = 'running', owner = ? WHERE id = ?",
                     (owner, row[0]))
    return next(r for r in rows(study, schedule) if r["id"] == row[0])


def _finish(study, row_id, owner, **values):
    names = ", ".join(f"{k} = ?" for k in values)
    with study.transaction() as conn:
        conn.execute(f"UPDATE reranks SET {names}, owner = NULL, finished = ? "
                     "WHERE id = ? AND owner = ?", (*values.values(), time.time(), row_id, owner))


def _release(study, row_id, owner):
    with study.transaction() as conn:
        conn.execute("UPDATE reranks SET state = 'pending', owner = NULL WHERE id = ? AND "
                     "owner = ?", (row_id, owner))


def _train(flags, log):
    """Runs the training binary, its output indented into ours; (exit code, its
    `error:` line or last line)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "deeplab_dpc.train", *flags], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda parent=os.getpid(): files.die_with_parent(parent))
    last = ""
    for line in process.stdout:
        line = line.rstrip()
        if line.startswith("error: ") or (line and not last.startswith("error: ")):
            last = line
        log("    " + line)
    return process.wait(), last


def _evaluate(run_dir, split, scale):
    from deeplab_dpc.eval import evaluator

    reports = list(evaluator.evaluate_run(
        run_dir, os.path.join(run_dir, f"eval_{split}"), eval_split=split, scales=(scale,),
        max_evaluations=1, log=lambda line: None))
    return reports[-1][0]


def run_all(study, schedule, search_split, image_scale, cells_dir, log=print):
    """Trains and evaluates every pending run of `schedule`; returns the rows."""
    owner = make_owner()
    count = 0
    while True:
        row = claim(study, schedule.hash, owner)
        if row is None:
            return rows(study, schedule.hash)
        head = heads_lib.head_from_json(json.loads(row["cell"]))
        cell_path = os.path.join(cells_dir, run_name(head, 0)[:-len("_seed0")] + ".json")
        if not isinstance(head, heads_lib.AsppHead) and not os.path.exists(cell_path):
            files.write_atomically(cell_path, json.dumps(head.to_reference(), indent=2) + "\n")
        log(f"re-rank run {row['id']} ({row['origin']}, seed {row['seed']}): "
            f"{heads_lib.describe(head)} -> {row['run_dir']}")
        flags = ([f"--train_logdir={row['run_dir']}", *schedule.flags,
                  *head_flags(head, cell_path), f"--seed={row['seed']}"])
        try:
            code, last = _train(flags, log)
            if code != 0 and not (code == 2 and "loss is" in last):
                # Killed, crashed or refused: not a result of this cell. The row waits
                # for a rerun, which resumes the run from its checkpoints.
                raise InputError(f"training {row['run_dir']} failed: {last or f'exit {code}'}")
            if code == 0:
                kill_point("rerank trained", count + 1)
                search = _evaluate(row["run_dir"], search_split, image_scale)
                val = _evaluate(row["run_dir"], "val", image_scale)
        except BaseException:
            _release(study, row["id"], owner)
            raise
        if code != 0:  # diverged: the cell's own result
            _finish(study, row["id"], owner, state="failed", error=last[:500])
            log(f"  failed: {last}")
            continue
        result = {"search_split": search_split, "search": search, "val": val,
                  "flags": flags}
        _finish(study, row["id"], owner, state="done", search_miou=search["miou"],
                val_miou=val["miou"], result=json.dumps(result))
        count += 1
        log(f"  {search_split} mIOU {100 * search['miou']:.2f}%, val mIOU "
            f"{100 * val['miou']:.2f}%")
