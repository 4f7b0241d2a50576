"""Running a search on this machine: workers that claim trials from the study.

A worker repeats: in one study transaction, take a trial (a running one whose
owner is gone, resumed from its checkpoint; a pending one; or the next new
candidate of the seed stream, skipping collisions and over-budget cells), hold
its lease with a heartbeat while `proxy.run_trial` trains it, then record the
result. With `num_workers > 1` the workers are spawned processes (never forked:
TensorFlow does not survive a fork), each given its own GPU when there are GPUs
(`CUDA_VISIBLE_DEVICES` set before TensorFlow loads) and cores / workers
intra-op threads; they die with the command that started them.
"""
import dataclasses
import multiprocessing
import os
import shutil
import threading
import time

from deeplab_dpc import spec
from deeplab_dpc.errors import InputError
from deeplab_dpc.search import heads as heads_lib
from deeplab_dpc.search import sampler as sampling
from deeplab_dpc.search.proxy import ProxySettings
from deeplab_dpc.search.study import SEARCH_ORIGINS, Study, make_owner

MAX_DRAWS = 100_000  # draws per claim without a new network before the space counts as spent


class SpaceExhausted(Exception):
    """No candidate left that the study does not hold (or that fits the budgets)."""


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    study: str
    feature_cache_dir: str
    num_trials: int
    proxy: ProxySettings = ProxySettings()
    sampler: sampling.SamplerSettings = sampling.SamplerSettings()
    num_workers: int = 1
    lease_seconds: float = 120.0
    poll_seconds: float = 2.0

    def __post_init__(self):
        if self.num_trials < 1:
            raise InputError("num_trials must be >= 1", param="num_trials")
        if self.num_workers < 1:
            raise InputError("num_workers must be >= 1", param="num_workers")
        if not self.lease_seconds > 0:
            raise InputError("lease_seconds must be > 0", param="lease_seconds")

    @property
    def trials_dir(self):
        """Where running trials checkpoint: beside the study, one folder per trial."""
        return os.path.abspath(self.study) + ".trials"

    def study_settings(self, cache_hash):
        """What every trial depends on: a restart with other values is refused. Not
        the checkpoint interval: a resumed trial ends as if never stopped."""
        proxy = self.proxy.to_dict()
        proxy.pop("save_interval_steps")
        return dict(cache_content_hash=cache_hash, proxy=proxy,
                    sampler=self.sampler.to_dict())


def open_study(config, cache):
    """The study file, created and bound to the config's settings if new."""
    from deeplab_dpc.search.proxy import check_cache

    check_cache(cache, config.proxy)  # before the study file is made
    study = Study(config.study, create=True)
    study.bind(config.study_settings(cache.content_hash),
               feature_cache_dir=os.path.abspath(config.feature_cache_dir)
               if "://" not in config.feature_cache_dir else config.feature_cache_dir)
    return study


def search_trial_count(conn, seed, finished=False):
    """Trials that count toward `num_trials`: the study seed's, baselines excepted."""
    query = "SELECT COUNT(*) FROM trials WHERE seed = ? AND origin != 'baseline'"
    if finished:
        query += " AND state IN ('done', 'failed', 'stopped')"
    return conn.execute(query, (seed,)).fetchone()[0]


def claim(study, config, owner, cost_fn, log=print):
    """The next trial for `owner` (a study.Trial, now running under its lease), "wait"
    while others hold the last ones, or None when the search is complete."""
    notes = []
    with study.transaction() as conn:
        now = time.time()
        for trial in study.reclaimable(conn, now):
            study.take(conn, trial.id, owner, config.lease_seconds, now)
            notes.append(f"trial {trial.id}: resuming (its owner {trial.owner} is gone)")
            return _after(study, trial.id, notes, log)
        row = conn.execute("SELECT id FROM trials WHERE state = 'pending' ORDER BY id "
                           "LIMIT 1").fetchone()
        if row:
            study.take(conn, row[0], owner, config.lease_seconds, now)
            return _after(study, row[0], notes, log)
        if search_trial_count(conn, config.sampler.seed) >= config.num_trials:
            running = conn.execute("SELECT COUNT(*) FROM trials WHERE state = 'running'"
                                   ).fetchone()[0]
            return "wait" if running else None
        trial_id, exhausted = _new_candidate(study, conn, config, owner, cost_fn, now, notes)
    # The draws that found the space spent stay on record (committed above).
    if exhausted:
        for line in notes:
            log(line)
        raise SpaceExhausted(exhausted)
    return _after(study, trial_id, notes, log)


def _after(study, trial_id, notes, log):
    for line in notes:
        log(line)
    return next(t for t in study.trials() if t.id == trial_id) if trial_id else None


def _new_candidate(study, conn, config, owner, cost_fn, now, notes):
    settings, seed = config.sampler, config.sampler.seed
    index = conn.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM candidates").fetchone()[0]
    held = dict(conn.execute("SELECT key, id FROM trials WHERE seed = ?", (seed,)).fetchall())
    rejected = {k for (k,) in conn.execute(
        "SELECT DISTINCT key FROM candidates WHERE outcome = 'over_budget'")}
    top = [heads_lib.head_from_json(t.cell) for t in study.top(settings.near_best_top_k, seed)]
    top = [t for t in top if isinstance(t, spec.CellSpec)
           and t.num_branches == settings.num_branches]
    space = spec.num_networks(settings.num_branches)
    for _ in range(MAX_DRAWS):
        if len(held.keys() | rejected) >= space:
            return None, (f"the search space is exhausted: all {space} networks of "
                          f"{settings.num_branches} branches are in the study or over budget")
        cell, origin, parent = sampling.draw(index, settings, top)
        key = cell.canonical_key()
        if key in held:
            conn.execute("INSERT INTO candidates (idx, key, outcome, trial_id) VALUES "
                         "(?, ?, 'collision', ?)", (index, key, held[key]))
            notes.append(f"candidate {index}: collision with trial {held[key]} ({key}); "
                         "not trained again")
            index += 1
            continue
        reason = sampling.over_budget(cost_fn(cell), settings) \
            if (settings.max_madds or settings.max_params) else None
        if reason:
            conn.execute("INSERT INTO candidates (idx, key, outcome, detail) VALUES "
                         "(?, ?, 'over_budget', ?)", (index, key, reason))
            notes.append(f"candidate {index}: over budget ({reason})")
            rejected.add(key)
            index += 1
            continue
        trial_id = study.insert_trial(
            conn, key, seed, heads_lib.head_to_json(cell), origin, candidate=index,
            parent_key=parent.canonical_key() if parent is not None else None,
            state="running")
        study.take(conn, trial_id, owner, config.lease_seconds, now)
        conn.execute("INSERT INTO candidates (idx, key, outcome, trial_id) VALUES "
                     "(?, ?, 'trial', ?)", (index, key, trial_id))
        return trial_id, None
    return None, (f"no new network in {MAX_DRAWS} draws: the space left under the budgets "
                  "is (nearly) exhausted")


class _Heartbeat:
    """Renews a lease every lease/4 seconds from its own connection."""

    def __init__(self, path, trial_id, owner, lease_seconds):
        self.args = (trial_id, owner, lease_seconds)
        self.path, self.stop, self.lost = path, threading.Event(), False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        study = Study(self.path)
        try:
            while not self.stop.wait(self.args[2] / 4):
                if not study.renew(*self.args):
                    self.lost = True
                    return
        finally:
            study.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def _clean_trial_dirs(study, config):
    """Checkpoint folders of finished trials (a kill between the result and the
    clean-up leaves one) and of trials no longer in the study."""
    if not os.path.isdir(config.trials_dir):
        return
    with study.transaction() as conn:  # no worker claims a trial meanwhile
        live = {str(r[0]) for r in conn.execute(
            "SELECT id FROM trials WHERE state IN ('pending', 'running')")}
        for name in os.listdir(config.trials_dir):
            if name not in live:
                shutil.rmtree(os.path.join(config.trials_dir, name), ignore_errors=True)


def run_worker(config, owner=None, log=print):
    """Claims and trains trials until the study is complete; returns how many this
    worker finished."""
    from deeplab_dpc.search import proxy
    from deeplab_dpc.train.loop import TrainingDivergedError

    cache = proxy.as_cache(config.feature_cache_dir)
    study = open_study(config, cache)
    owner = owner or make_owner()
    costs = {}

    def cost_fn(cell):
        key = cell.canonical_key()
        if key not in costs:
            costs[key] = proxy.head_cost(cell, cache, config.proxy)[:2]
        return costs[key]

    stopper = (study.median_stopper(config.proxy.early_stopping_min_trials)
               if config.proxy.early_stopping_step else None)
    finished = 0
    _clean_trial_dirs(study, config)
    try:
        while True:
            try:
                trial = claim(study, config, owner, cost_fn, log)
            except SpaceExhausted as e:
                log(str(e))
                return finished
            if trial is None:
                return finished
            if trial == "wait":
                time.sleep(config.poll_seconds)
                continue
            head = heads_lib.head_from_json(trial.cell)
            trial_dir = os.path.join(config.trials_dir, str(trial.id))
            log(f"trial {trial.id} ({trial.origin}, candidate {trial.candidate}): "
                f"{heads_lib.describe(head)}")
            with _Heartbeat(config.study, trial.id, owner, config.lease_seconds) as beat:
                try:
                    # Baselines and repeats are measured, never stopped early.
                    result = proxy.run_trial(
                        head, cache, config.proxy, trial.seed, trial_dir,
                        stopper if trial.origin in SEARCH_ORIGINS else None)
                except TrainingDivergedError as e:
                    outcome = ("failed", None, None, str(e))
                except InputError:
                    # Bad settings or cache: every trial would fail the same way. The
                    # trial goes back to pending, uncounted.
                    study.release(trial.id, owner)
                    raise
                except Exception as e:  # noqa: BLE001 (a crash: retried once)
                    state = study.crashed(trial.id, owner, f"{type(e).__name__}: {e}"[:500])
                    log(f"trial {trial.id} crashed ({type(e).__name__}: {e}); now {state}")
                    continue
                else:
                    outcome = ("stopped" if result.stopped else "done", result.score,
                               result.to_dict(), None)
            if beat.lost or not study.finish(trial.id, owner, *outcome):
                log(f"trial {trial.id}: lost its lease to another worker; result dropped")
                continue
            shutil.rmtree(trial_dir, ignore_errors=True)
            finished += 1
            score = "" if outcome[1] is None else f" mIOU {outcome[1]:.4f}"
            log(f"trial {trial.id} {outcome[0]}{score} ({study.counts()['done']} done)")
    finally:
        study.close()


# --------------------------------------------------------------- several processes
def configure_threads(num_workers, cores=None):
    """Intra-op threads = cores / workers (inter-op 1... 2): set before TF runs an op."""
    import tensorflow as tf

    cores = cores or os.cpu_count() or 1
    threads = max(1, cores // num_workers)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:  # TensorFlow already ran ops in this process: keep its setting
        pass
    return threads


def gpu_assignment(num_workers):
    """GPU ids per worker (None each on a machine without GPUs); more workers than
    GPUs is refused."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = [g for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    else:
        import tensorflow as tf

        gpus = [str(i) for i in range(len(tf.config.list_physical_devices("GPU")))]
    if not gpus:
        return [None] * num_workers
    if num_workers > len(gpus):
        raise InputError(f"num_workers {num_workers} is more than the {len(gpus)} GPUs: one "
                         "worker per GPU", param="num_workers")
    return gpus[:num_workers]


BAD_INPUT_EXIT = 3  # a worker's exit code after bad input (its message on the queue)


def _worker_process(config, gpu, parent_pid, errors):
    from deeplab_dpc import files

    files.die_with_parent(parent_pid)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    from deeplab_dpc.tf_import import import_tensorflow

    import_tensorflow()
    configure_threads(config.num_workers)
    try:
        run_worker(config, log=lambda line: print(f"[worker {os.getpid()}] {line}",
                                                  flush=True))
    except InputError as e:  # the parent reports it, once
        errors.put((str(e), e.params))
        errors.close()
        errors.join_thread()
        os._exit(BAD_INPUT_EXIT)


def run_search(config, log=print):
    """Runs the search to `num_trials`; in this process with one worker, else in
    spawned worker processes (restarted if one dies). Returns the study's counts."""
    from deeplab_dpc.search import proxy

    cache = proxy.as_cache(config.feature_cache_dir)
    study = open_study(config, cache)  # settings refused before any worker starts
    study.close()
    if config.num_workers == 1:
        configure_threads(1)
        run_worker(config, log=log)
    else:
        gpus = gpu_assignment(config.num_workers)
        context = multiprocessing.get_context("spawn")
        workers, restarts, errors = {}, 0, context.Queue()

        def start(gpu):
            process = context.Process(target=_worker_process,
                                      args=(config, gpu, os.getpid(), errors), daemon=False)
            process.start()
            workers[process] = gpu

        for gpu in gpus:
            start(gpu)
        while workers:
            for process in list(workers):
                process.join(timeout=0.5)
                if process.exitcode is None:
                    continue
                gpu = workers.pop(process)
                if process.exitcode == BAD_INPUT_EXIT:
                    for other in workers:
                        other.kill()
                    message, params = errors.get(timeout=10)
                    raise InputError(message, param=params)
                if process.exitcode < 0:  # killed by a signal: by the OOM killer, say
                    died = Study(config.study)
                    try:
                        lost = died.process_died(process.pid, "its worker process was killed "
                                                 f"by signal {-process.exitcode}")
                    finally:
                        died.close()
                    for trial_id, state in lost:
                        log(f"trial {trial_id}: its worker was killed by signal "
                            f"{-process.exitcode} (out of memory?); now {state}")
                    restarts = 0 if lost else restarts  # a trial's fault, not the setup's
                if process.exitcode != 0 and not _complete(config):
                    restarts += 1
                    if restarts > 3 * config.num_workers:
                        raise RuntimeError("search workers keep dying; see their output")
                    log(f"a worker exited with code {process.exitcode}; starting another")
                    start(gpu)
    study = Study(config.study)
    try:
        return study.counts()
    finally:
        study.close()


def _complete(config):
    study = Study(config.study)
    try:
        counts = study.counts()
        return counts["pending"] == counts["running"] == 0 and search_trial_count(
            study.conn, config.sampler.seed, finished=True) >= config.num_trials
    finally:
        study.close()
