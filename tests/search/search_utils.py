"""A tiny search for the tests: a 4x14-cell context cache and seconds-long trials."""
import sqlite3

from tests.search import caches

# Flags of a search whose trials take about a second.
TINY = ["--num_branches=1", "--proxy_training_number_of_steps=4", "--proxy_batch_size=4",
        "--proxy_base_learning_rate=0.05", "--proxy_batch_norm_decay=0.9", "--dpc_filters=8",
        "--proxy_loss_resolution=logits", "--proxy_save_interval_steps=2",
        "--near_best_fraction=0.5", "--near_best_top_k=3", "--lease_seconds=60"]


def tiny_cache(folder):
    return caches.write_context_cache(str(folder), num_train=4, num_minival=2)


def tiny_config(study, cache, num_trials, **overrides):
    from deeplab_dpc.search.proxy import ProxySettings
    from deeplab_dpc.search.sampler import SamplerSettings
    from deeplab_dpc.search.workers import SearchConfig

    proxy = dict(training_number_of_steps=4, batch_size=4, base_learning_rate=0.05,
                 batch_norm_decay=0.9, dpc_filters=8, loss_resolution="logits",
                 save_interval_steps=2)
    sampler = dict(num_branches=1, near_best_fraction=0.5, near_best_top_k=3)
    proxy.update(overrides.pop("proxy", {}))
    sampler.update(overrides.pop("sampler", {}))
    return SearchConfig(str(study), str(cache), num_trials, ProxySettings(**proxy),
                        SamplerSettings(**sampler), **overrides)


def rows(study_path, finished_only=False):
    """The trials table as {id: (key, seed, candidate, origin, cell, state, score,
    result)}: everything but owners and times."""
    conn = sqlite3.connect(study_path)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'trials'").fetchone():
            return {}  # killed before its schema was committed
        query = ("SELECT id, key, seed, candidate, origin, cell, state, score, result "
                 "FROM trials")
        if finished_only:
            query += " WHERE state IN ('done', 'failed', 'stopped')"
        return {r[0]: r[1:] for r in conn.execute(query + " ORDER BY id")}
    finally:
        conn.close()


def without_times(result_json):
    import json

    result = json.loads(result_json)
    result.pop("wall_time_s", None)
    return result
