"""A re-rank from start to end: choose the cells, give baselines (and the noise floor)
their proxy trials, then train and evaluate every (cell, seed) on one schedule.

Rerunning the same command resumes it: finished runs stay, a run killed mid-way
resumes from its checkpoints, finished proxy trials are not repeated.
"""
import dataclasses
import os
import time

from deeplab_dpc.errors import InputError
from deeplab_dpc.rerank import runs, selection
from deeplab_dpc.search import heads as heads_lib


@dataclasses.dataclass(frozen=True)
class RerankConfig:
    study: str
    top_k: int = 4
    spread_k: int = 0
    extra_cells: tuple = ()  # "aspp", "published", "1x1" or cell JSON files
    num_seeds: int = 2
    train_flagfile: str = None  # the schedule's overrides of the source run's flags
    rerank_dir: str = None  # default: `<study>.rerank` beside the study
    noise_floor_seeds: int = 0  # the best cell's proxy trial again at this many seeds
    feature_cache_dir: str = None  # default: the one the study searched on

    def __post_init__(self):
        for name, least in (("top_k", 0), ("spread_k", 0), ("num_seeds", 1),
                            ("noise_floor_seeds", 0)):
            if getattr(self, name) < least:
                raise InputError(f"{name} must be >= {least}", param=name)
        if self.top_k + self.spread_k + len(self.extra_cells) == 0:
            raise InputError("nothing to re-rank: top_k, spread_k and extra_cells are all "
                             "empty", param=("top_k", "spread_k", "extra_cells"))
        object.__setattr__(self, "extra_cells", tuple(self.extra_cells))
        for name in self.extra_cells:
            selection.parse_extra(name)  # a bad name or file is refused before anything runs

    @property
    def output_dir(self):
        return os.path.abspath(self.rerank_dir or self.study + ".rerank")


def _open(config):
    from deeplab_dpc.cache_features.format import FeatureCache
    from deeplab_dpc.search.study import Study

    study = Study(config.study)
    if study.settings is None:
        raise InputError(f"study {config.study} holds no search yet", param="study")
    cache_dir = config.feature_cache_dir or study.get_meta("feature_cache_dir")
    cache = FeatureCache(cache_dir)
    if cache.content_hash != study.settings["cache_content_hash"]:
        raise InputError(f"feature_cache_dir {cache_dir} is not the cache the study searched "
                         "on (another content hash)", param="feature_cache_dir")
    return study, cache, cache_dir


def _check_data(cache, search_split):
    """Re-ranking trains and evaluates on the dataset's own TFRecords."""
    import tensorflow as tf

    if cache.settings.get("holdout_from_train"):
        raise InputError(
            f"feature cache {cache.path} made its {search_split} by holding out training "
            "images; re-ranking needs that split as TFRecords of the dataset (convert one, "
            "and cache it with --splits), not yet a hold-out", param="feature_cache_dir")
    dataset_dir = cache.settings["dataset"].get("dataset_dir")
    for split in (search_split, "val"):
        if not dataset_dir or not tf.io.gfile.glob(os.path.join(dataset_dir, f"{split}-*")):
            raise InputError(f"dataset {dataset_dir}: no {split} shards to evaluate re-ranked "
                             "runs on", param="feature_cache_dir")


def _refuse_a_running_search(study):
    """The proxy trials of a re-rank go through the search's worker, which would wait for
    (and help with) a search still running on the study."""
    from deeplab_dpc.search.study import SEARCH_ORIGINS, owner_is_dead

    live = [t for t in study.trials(states=("running",))
            if t.origin in SEARCH_ORIGINS and not owner_is_dead(t.owner)
            and (t.expires or 0) > time.time()]
    if live:
        raise InputError(f"study {study.path}: a search is running on it (trial {live[0].id}, "
                         f"owner {live[0].owner}); re-rank once it has finished",
                         param="study")


def _search_config(study, cache_dir):
    from deeplab_dpc.search.proxy import ProxySettings
    from deeplab_dpc.search.sampler import SamplerSettings
    from deeplab_dpc.search import workers
    from deeplab_dpc.search.workers import SearchConfig

    settings = study.settings
    searched = workers.search_trial_count(study.conn, settings["sampler"]["seed"])
    return SearchConfig(study.path, cache_dir, max(searched, 1),
                        ProxySettings.from_dict(settings["proxy"]),
                        SamplerSettings(**settings["sampler"]))


def run_rerank(config, log=print):
    """Runs (or resumes) the re-rank; returns (the rows of `rerank_summary` for its
    schedule, best search-split mean first; its failed (diverged) runs)."""
    from deeplab_dpc.search import workers

    study, cache, cache_dir = _open(config)
    try:
        search_split = study.settings["proxy"]["search_split"]
        _check_data(cache, search_split)
        schedule = runs.make_schedule(cache.settings, config.train_flagfile)
        _refuse_a_running_search(study)
        candidates = selection.choose(study, config.top_k, config.spread_k, config.extra_cells)
        seed = study.settings["sampler"]["seed"]
        wanted = [(c.head, seed) for c in candidates if c.trial_id is None]
        wanted_repeats = []
        if config.noise_floor_seeds:  # the proxy's best search cell, at more seeds
            best = heads_lib.head_from_json(selection.search_ranking(study)[0].cell)
            wanted_repeats = [(best, seed + i) for i in range(1, config.noise_floor_seeds + 1)]
        selection.add_proxy_trials(study, wanted, "baseline")
        selection.add_proxy_trials(study, wanted_repeats, "repeat")
        if study.counts()["pending"] or study.counts()["running"]:
            log("proxy trials of baselines and repeats ...")
            workers.run_worker(_search_config(study, cache_dir), log=log)
        candidates = selection.choose(study, config.top_k, config.spread_k, config.extra_cells)
        origins = [c.origin for c in candidates]
        log(f"re-ranking {origins.count('top')} top, {origins.count('spread')} spread and "
            f"{origins.count('baseline')} baseline cells x {config.num_seeds} seeds")
        runs.add_runs(study, candidates, range(config.num_seeds), schedule, config.output_dir)
        rows = runs.run_all(study, schedule, search_split, cache.image_scale,
                            os.path.join(config.output_dir, "cells"), log=log)
        return summary(study, schedule.hash), [r for r in rows if r["state"] == "failed"]
    finally:
        study.close()


def summary(study, schedule_hash):
    """`rerank_summary` rows of one schedule, with each key's proxy score."""
    seed = study.settings["sampler"]["seed"]
    proxy = {t.key: t.score for t in study.trials(states=("done",), seed=seed)}
    columns = ("key", "schedule", "origin", "runs", "search_mean", "search_min",
               "search_max", "val_mean", "val_min", "val_max")
    out = []
    for row in study.conn.execute("SELECT * FROM rerank_summary WHERE schedule = ? ORDER BY "
                                  "search_mean DESC", (schedule_hash,)):
        item = dict(zip(columns, row))
        item["proxy_score"] = proxy.get(item["key"])
        out.append(item)
    return out
