"""`python -m deeplab_dpc.search`: random search for a Dense Prediction Cell.

    python -m deeplab_dpc.search --study=studies/s.sqlite \
        --feature_cache_dir=caches/quickstart --num_trials=40 --num_workers=2
    python -m deeplab_dpc.search --study=studies/s.sqlite --report [--format=json]
    python -m deeplab_dpc.search --study=studies/s.sqlite --export_top=5 --output_dir=cells

Each trial trains a candidate cell on the feature cache (the proxy task) and
scores it on --search_split. Rerunning a killed command resumes the study: no
finished trial is lost or repeated.
"""
from absl import flags

from deeplab_dpc import cli, dry_run
from deeplab_dpc.errors import InputError
from deeplab_dpc.tf_import import import_tensorflow

FLAGS = flags.FLAGS
flags.DEFINE_string("study", None, "The study: one SQLite file on a local disk.")
flags.DEFINE_string("feature_cache_dir", None, "The feature cache (cache_features' output).")
flags.DEFINE_integer("num_trials", 100, "Trials in the study in all (failed ones count).")
flags.DEFINE_integer("num_workers", 1, "Worker processes on this machine (at most one per "
                     "GPU); with --backend=ray, the trials run at once.")
flags.DEFINE_enum("backend", "local", ["local", "ray"], "local processes, or Ray Tune "
                  "(pip install -e '.[ray]'; joins RAY_ADDRESS when set).")
flags.DEFINE_string("resources_per_trial", "cpu=1,gpu=0", "Ray: resources of one trial.")
flags.DEFINE_integer("num_branches", 5, "B, the branches of a cell.")
flags.DEFINE_float("near_best_fraction", 0.2, "Share of candidates that mutate a top trial.")
flags.DEFINE_integer("near_best_top_k", 10, "How many top trials near-best samples mutate.")
flags.DEFINE_float("max_madds", 0, "Reject cells with more multiply-adds (0: no budget).")
flags.DEFINE_float("max_params", 0, "Reject cells with more parameters (0: no budget).")
flags.DEFINE_integer("seed", 0, "Seed of the candidate stream and of every trial.")
flags.DEFINE_integer("proxy_training_number_of_steps", 30000, "Steps of one trial.")
flags.DEFINE_integer("proxy_batch_size", 8, "Batch of one trial.")
flags.DEFINE_float("proxy_base_learning_rate", 0.01, "Poly learning rate's start.")
flags.DEFINE_list("proxy_crop_size", None, "Random crop in feature cells (h,w); unset: whole.")
flags.DEFINE_bool("proxy_flip", True, "Random left-right flips.")
flags.DEFINE_float("proxy_batch_norm_decay", 0.9997, "BN decay (about 0.9 for short trials).")
flags.DEFINE_enum("proxy_loss_resolution", "label", ["label", "logits"],
                  "label: logits upsampled to the label; logits: labels at the feature cells.")
flags.DEFINE_integer("proxy_save_interval_steps", 1000, "Steps between a trial's checkpoints.")
flags.DEFINE_integer("dpc_filters", 256, "Channels of every branch of the cell.")
flags.DEFINE_string("search_split", "minival", "Split that scores candidates (never val).")
flags.DEFINE_integer("early_stopping_step", 0, "Score trials at this step and stop those "
                     "below the median of finished ones (0: never).")
flags.DEFINE_integer("early_stopping_min_trials", 5, "Finished trials the median needs.")
flags.DEFINE_list("complexity_image_size", None, "Image size (h,w) of reported MAdds; "
                  "unset: the cache's.")
flags.DEFINE_float("lease_seconds", 120, "A running trial's lease; others take it over "
                   "when it expires.")
flags.DEFINE_bool("report", False, "Print the top trials and counts by state; train nothing.")
flags.DEFINE_enum("format", "text", ["text", "json"], "--report's format.")
flags.DEFINE_integer("top", 10, "Trials in --report's top list.")
flags.DEFINE_integer("export_top", 0, "Write the top K cells and their flagfiles.")
flags.DEFINE_string("output_dir", None, "Where --export_top writes.")


def _config():
    from deeplab_dpc.search.proxy import ProxySettings
    from deeplab_dpc.search.sampler import SamplerSettings
    from deeplab_dpc.search.workers import SearchConfig

    proxy = ProxySettings(
        training_number_of_steps=FLAGS.proxy_training_number_of_steps,
        batch_size=FLAGS.proxy_batch_size, base_learning_rate=FLAGS.proxy_base_learning_rate,
        crop_size=cli.parse_size(FLAGS.proxy_crop_size, "proxy_crop_size"),
        flip=FLAGS.proxy_flip, batch_norm_decay=FLAGS.proxy_batch_norm_decay,
        dpc_filters=FLAGS.dpc_filters, loss_resolution=FLAGS.proxy_loss_resolution,
        early_stopping_step=FLAGS.early_stopping_step,
        early_stopping_min_trials=FLAGS.early_stopping_min_trials,
        search_split=FLAGS.search_split, save_interval_steps=FLAGS.proxy_save_interval_steps,
        complexity_image_size=cli.parse_size(FLAGS.complexity_image_size,
                                             "complexity_image_size"))
    space = SamplerSettings(
        num_branches=FLAGS.num_branches, near_best_fraction=FLAGS.near_best_fraction,
        near_best_top_k=FLAGS.near_best_top_k, seed=FLAGS.seed,
        max_madds=int(FLAGS.max_madds), max_params=int(FLAGS.max_params))
    return SearchConfig(FLAGS.study, FLAGS.feature_cache_dir, FLAGS.num_trials, proxy, space,
                        FLAGS.num_workers, FLAGS.lease_seconds)


# Library parameter -> flag, where they differ.
FLAG_NAMES = {"training_number_of_steps": "proxy_training_number_of_steps",
              "batch_size": "proxy_batch_size", "base_learning_rate": "proxy_base_learning_rate",
              "crop_size": "proxy_crop_size", "batch_norm_decay": "proxy_batch_norm_decay",
              "loss_resolution": "proxy_loss_resolution",
              "save_interval_steps": "proxy_save_interval_steps"}


def _inspect():
    import json

    from deeplab_dpc.search import report
    from deeplab_dpc.search.study import Study

    study = Study(FLAGS.study)
    try:
        if study.settings is None:
            raise InputError(f"--study {FLAGS.study} holds no search yet (it was stopped "
                             "before its first transaction)")
        if FLAGS.export_top:
            cli.require(FLAGS, "output_dir")
            cache_dir = FLAGS.feature_cache_dir or study.get_meta("feature_cache_dir")
            from deeplab_dpc.cache_features.format import FeatureCache

            cache = FeatureCache(cache_dir)
            if cache.content_hash != study.settings["cache_content_hash"]:
                raise InputError(f"--feature_cache_dir {cache_dir} is not the cache the study "
                                 "searched on (another content hash)")
            report.export_top(study, FLAGS.export_top, FLAGS.output_dir, cache.settings)
        else:
            content = report.report_json(study, FLAGS.top)
            print(json.dumps(content, indent=2) if FLAGS.format == "json"
                  else report.format_report(content))
    finally:
        study.close()


def main(argv):
    del argv
    cli.require(FLAGS, "study")
    if FLAGS.report or FLAGS.export_top:
        if FLAGS.report and FLAGS.export_top:
            raise InputError("--report and --export_top: give one")
        if FLAGS.dry_run:
            return dry_run.show("deeplab_dpc.search", dict(
                study=FLAGS.study, report=FLAGS.report, export_top=FLAGS.export_top,
                output_dir=FLAGS.output_dir), notes=cli.missing_notes(study=FLAGS.study))
        import_tensorflow()
        return _inspect()
    cli.require(FLAGS, "feature_cache_dir")
    config = _config()  # every flag checked before TensorFlow loads
    if FLAGS.dry_run:
        import dataclasses

        return dry_run.show("deeplab_dpc.search", dict(
            dataclasses.asdict(config), backend=FLAGS.backend), notes=cli.missing_notes(
                study=FLAGS.study, feature_cache_dir=FLAGS.feature_cache_dir))
    import_tensorflow()
    if FLAGS.backend == "ray":
        from deeplab_dpc.search import ray_backend

        counts = ray_backend.run_search(config, FLAGS.resources_per_trial)
    else:
        from deeplab_dpc.search import workers

        counts = workers.run_search(config)
    print("search: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n), flush=True)


if __name__ == "__main__":
    cli.run(main, flag_names=FLAG_NAMES)
