"""The same search on Ray Tune (`--backend=ray`, `pip install -e '.[ray]'`).

Trials run as Tune trials with `resources_per_trial`; only the driver touches the
study, through `StudySearcher` (a Tune `Searcher`): `suggest` claims the next
trial with the local backend's `workers.claim` (same seed stream, collisions,
budgets, resumption), `on_trial_complete` records it, and it answers FINISHED
once the study holds `num_trials`. The study is the search's whole state, so
`save`/`restore` keep only which Tune trial runs which study trial: a
`Tuner.restore` continues exactly as rerunning the command does. Early stopping
is Tune's `MedianStoppingRule` at `early_stopping_step` with the same minimum
of finished trials. `ray.init()` joins the cluster in `RAY_ADDRESS` when set,
else starts a local one; every node needs this package installed, and the
feature cache (any tf.io.gfile path) and the study's `.trials` folder must be
reachable from every node.
"""
import dataclasses
import json
import os
import pickle
import threading

from deeplab_dpc.errors import InputError
from deeplab_dpc.search import heads as heads_lib
from deeplab_dpc.search import workers
from deeplab_dpc.search.study import Study, make_owner


def parse_resources(text):
    """`cpu=2,gpu=1` -> {"cpu": 2.0, "gpu": 1.0}."""
    resources = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            resources[name.strip().lower()] = float(value)
        except ValueError:
            resources = None
            break
    if not resources or set(resources) - {"cpu", "gpu"} or min(resources.values()) < 0 \
            or not resources.get("cpu"):
        raise InputError(f"resources_per_trial {text!r}: expected cpu=N[,gpu=M] with N > 0",
                         param="resources_per_trial")
    return resources


def trainable(params, search, threads):
    """One Tune trial: `proxy.run_trial` on the cell the searcher chose."""
    from ray import tune

    from deeplab_dpc.search import proxy
    from deeplab_dpc.tf_import import import_tensorflow

    import_tensorflow()
    workers.configure_threads(1, cores=threads)
    head = heads_lib.head_from_json(params["cell"])
    cache = proxy.as_cache(search.feature_cache_dir)

    def stopper(step, score):  # Tune's scheduler decides; a stopped trial ends here
        tune.report({"score": score, "step": step, "final": False})
        return False

    result = proxy.run_trial(head, cache, search.proxy, params["seed"],
                             os.path.join(search.trials_dir, str(params["trial"])),
                             stopper if search.proxy.early_stopping_step else None)
    # As JSON text: Tune flattens nested dicts of a result.
    tune.report({"score": result.score, "step": result.steps, "final": True,
                 "result_json": json.dumps(result.to_dict())})


def say(line):
    """The driver's log line. Looked up at call time, unlike a captured `print`: Tune
    pickles the searcher, and Ray may swap `builtins.print` (its tqdm patch) so that a
    captured one no longer pickles by reference."""
    print(line, flush=True)


def make_searcher(search, log=say):
    """The study's Tune Searcher (defined here: subclassing it needs Ray imported)."""
    from ray.tune.search import Searcher

    class _StudySearcher(Searcher):
        """Suggests the study's next trials; records their results."""

        def __init__(self):
            super().__init__(metric="score", mode="max")
            self.search, self.owner, self.live = search, make_owner(), {}
            self._study, self._costs, self._beat = None, {}, None

        def __getstate__(self):
            state = dict(self.__dict__)
            state.update(_study=None, _beat=None)
            return state

        @property
        def study(self):
            if self._study is None:
                self._study = Study(self.search.study)
                self._beat = threading.Thread(target=self._renew, daemon=True)
                self._beat.start()
            return self._study

        def _renew(self):
            study = Study(self.search.study)
            stop = threading.Event()
            while not stop.wait(self.search.lease_seconds / 4):
                for trial_id in list(self.live.values()):
                    study.renew(trial_id, self.owner, self.search.lease_seconds)

        def _cost(self, cell):
            from deeplab_dpc.search import proxy

            key = cell.canonical_key()
            if key not in self._costs:
                cache = proxy.as_cache(self.search.feature_cache_dir)
                self._costs[key] = proxy.head_cost(cell, cache, self.search.proxy)[:2]
            return self._costs[key]

        def suggest(self, trial_id):
            try:
                trial = workers.claim(self.study, self.search, self.owner, self._cost, log)
            except workers.SpaceExhausted as e:
                log(str(e))
                return Searcher.FINISHED
            if trial is None:
                return Searcher.FINISHED
            if trial == "wait":
                return None
            self.live[trial_id] = trial.id
            log(f"trial {trial.id} ({trial.origin}, candidate {trial.candidate}): "
                f"{heads_lib.describe(heads_lib.head_from_json(trial.cell))}")
            return {"trial": trial.id, "cell": trial.cell, "seed": trial.seed}

        def on_trial_complete(self, trial_id, result=None, error=False):
            study_id = self.live.pop(trial_id, None)
            if study_id is None:
                return
            if error or not result or "score" not in result:
                state = self.study.crashed(study_id, self.owner, "the Ray trial failed")
                log(f"trial {study_id} crashed under Ray; now {state}")
                return
            if result.get("final"):
                record = json.loads(result["result_json"])
                state = "stopped" if record.get("stopped") else "done"
            else:  # stopped by the median rule after its intermediate report
                record = {"score": result["score"], "steps": result["step"], "stopped": True,
                          "intermediate": {str(result["step"]): result["score"]}}
                state = "stopped"
            if self.study.finish(study_id, self.owner, state, result["score"], record):
                import shutil

                shutil.rmtree(os.path.join(self.search.trials_dir, str(study_id)),
                              ignore_errors=True)
            log(f"trial {study_id} {state} mIOU {result['score']:.4f}")

        def save(self, checkpoint_path):
            with open(checkpoint_path, "wb") as f:
                pickle.dump({"study": self.search.study, "live": self.live}, f)

        def restore(self, checkpoint_path):
            """After a driver restart: take over the leases our old process held."""
            with open(checkpoint_path, "rb") as f:
                state = pickle.load(f)
            self.live = dict(state["live"])
            import time

            with self.study.transaction() as conn:
                for study_id in self.live.values():
                    conn.execute("UPDATE trials SET owner = ?, expires = ? WHERE id = ? AND "
                                 "state = 'running'", (self.owner,
                                                       time.time() + self.search.lease_seconds,
                                                       study_id))

    return _StudySearcher()


def run_search(search, resources_per_trial="cpu=1,gpu=0", log=say, ray_init=None):
    """Runs the search on Ray Tune until the study holds `num_trials`; returns counts.
    `ray_init`: keyword arguments of `ray.init` (default: join RAY_ADDRESS or start
    a local instance)."""
    resources = parse_resources(resources_per_trial)
    # Tune runs each trial in its own working directory: give it absolute paths.
    search = dataclasses.replace(
        search, study=os.path.abspath(search.study),
        feature_cache_dir=search.feature_cache_dir if "://" in search.feature_cache_dir
        else os.path.abspath(search.feature_cache_dir))
    try:
        import ray
        from ray import tune
        from ray.tune.schedulers import FIFOScheduler, MedianStoppingRule
    except ImportError:
        raise InputError("backend ray needs Ray Tune: pip install -e '.[ray]'",
                         param="backend") from None
    from deeplab_dpc.search import proxy

    cache = proxy.as_cache(search.feature_cache_dir)
    workers.open_study(search, cache).close()  # settings refused before Ray starts
    if not ray.is_initialized():
        # A local instance without the dashboard (its processes cost seconds of start-up).
        default = {} if os.environ.get("RAY_ADDRESS") else {"include_dashboard": False}
        ray.init(**(default if ray_init is None else ray_init))
    k = search.proxy.early_stopping_step
    scheduler = (MedianStoppingRule(time_attr="step", metric="score", mode="max",
                                    grace_period=k,
                                    min_samples_required=search.proxy.early_stopping_min_trials)
                 if k else FIFOScheduler())
    fn = tune.with_resources(
        tune.with_parameters(trainable, search=search, threads=int(resources["cpu"])),
        resources)
    # --num_workers is the number of trials Tune runs at once.
    tuner = tune.Tuner(
        fn, tune_config=tune.TuneConfig(search_alg=make_searcher(search, log),
                                        scheduler=scheduler, num_samples=-1,
                                        max_concurrent_trials=search.num_workers),
        run_config=tune.RunConfig(name=os.path.basename(search.study) + ".ray",
                                  storage_path=os.path.dirname(os.path.abspath(search.study)),
                                  verbose=0))
    tuner.fit()
    study = Study(search.study)
    try:
        return study.counts()
    finally:
        study.close()
