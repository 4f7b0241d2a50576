r"""`python -m deeplab_dpc.rerank`: fine-tunes a study's best cells end to end.

    python -m deeplab_dpc.rerank --study=studies/s.sqlite --top_k=4 --spread_k=4 \
        --extra_cells=aspp,published,1x1 --num_seeds=2 [--train_flagfile=schedule.flags]

Every cell trains on the schedule of the run the feature cache came from (from its
checkpoint, with a fresh head), overridden by --train_flagfile, once per seed; each
run is a run directory under --rerank_dir that eval, vis and export take. Runs are
scored on the study's search split (which chooses the cell) and on val (reported
only), and recorded in the study with their mean and range per cell. Baselines get
proxy trials too. Rerunning the command resumes it.
"""
from absl import flags

from deeplab_dpc import cli, dry_run
from deeplab_dpc.tf_import import import_tensorflow

FLAGS = flags.FLAGS
flags.DEFINE_string("study", None, "The study (search's SQLite file).")
flags.DEFINE_integer("top_k", 4, "The proxy's best cells to re-rank.")
flags.DEFINE_integer("spread_k", 0, "More cells, spread evenly over the rest of the proxy "
                     "scores (a correlation on the top alone is range-restricted).")
flags.DEFINE_list("extra_cells", [], "Baselines: aspp (6/12/18 + image pooling), published, "
                  "1x1, or cell JSON files; they get proxy trials too.")
flags.DEFINE_integer("num_seeds", 2, "Runs per cell (seeds 0..N-1).")
flags.DEFINE_string("train_flagfile", None, "Train flags that override the source run's "
                    "(the schedule: steps, learning rate, ...).")
flags.DEFINE_string("rerank_dir", None, "Where the runs go; default <study>.rerank.")
flags.DEFINE_integer("noise_floor_seeds", 0, "Repeat the best cell's proxy trial at this "
                     "many more seeds (the noise floor).")
flags.DEFINE_string("feature_cache_dir", None, "The study's feature cache, if it moved.")


def main(argv):
    del argv
    cli.require(FLAGS, "study")
    from deeplab_dpc.rerank.driver import RerankConfig

    config = RerankConfig(
        FLAGS.study, FLAGS.top_k, FLAGS.spread_k, tuple(FLAGS.extra_cells), FLAGS.num_seeds,
        FLAGS.train_flagfile, FLAGS.rerank_dir, FLAGS.noise_floor_seeds,
        FLAGS.feature_cache_dir)
    if FLAGS.dry_run:
        import dataclasses

        return dry_run.show("deeplab_dpc.rerank", dataclasses.asdict(config),
                            notes=cli.missing_notes(study=FLAGS.study,
                                                    train_flagfile=FLAGS.train_flagfile))
    import_tensorflow()  # after the flag checks; its start-up log filtered
    from deeplab_dpc.rerank import driver

    rows, failed = driver.run_rerank(config)
    print(f"{'origin':>8} {'proxy':>7} {'search mean':>11} {'range':>13} {'val mean':>8} "
          f"{'runs':>4}  key")
    for r in rows:
        proxy = "n/a" if r["proxy_score"] is None else f"{100 * r['proxy_score']:.2f}"
        print(f"{r['origin']:>8} {proxy:>7} {100 * r['search_mean']:10.2f}% "
              f"{100 * r['search_min']:5.2f}-{100 * r['search_max']:5.2f} "
              f"{100 * r['val_mean']:7.2f}% {r['runs']:>4}  {r['key']}")
    for r in failed:
        print(f"failed: {r['key']} seed {r['seed']} ({r['run_dir']}): {r['error']}")


if __name__ == "__main__":
    cli.run(main)
