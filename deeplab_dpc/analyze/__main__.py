r"""`python -m deeplab_dpc.analyze`: a study's figures and every number behind them.

    python -m deeplab_dpc.analyze --study=studies/s.sqlite --output_dir=analysis

Writes `analysis.json` (Spearman's rho of proxy vs re-ranked scores with its p-value
and bootstrap interval, the Pareto front, the best and worst cells, branch weights,
the noise floor) and, with matplotlib installed (`pip install -e '.[plots]'`), the
PNG figures. Writes nothing into the study (an older study file is brought to the
current schema when opened).
"""
from absl import flags

from deeplab_dpc import cli, dry_run, files
from deeplab_dpc.errors import InputError
from deeplab_dpc.tf_import import import_tensorflow

FLAGS = flags.FLAGS
flags.DEFINE_string("study", None, "The study (search's SQLite file).")
flags.DEFINE_string("output_dir", None, "Where analysis.json and the figures go.")
flags.DEFINE_string("schedule", None, "Re-rank schedule hash; unset: the one with most runs.")
flags.DEFINE_integer("bootstrap_samples", 2000, "Resamples of the rho interval.")
flags.DEFINE_integer("seed", 0, "Seed of the bootstrap.")
flags.DEFINE_bool("plots", True, "Write the PNG figures (needs matplotlib).")


def main(argv):
    del argv
    cli.require(FLAGS, "study", "output_dir")
    files.check_output_dir(FLAGS.output_dir, "output_dir")
    if FLAGS.bootstrap_samples < 1:
        raise InputError("--bootstrap_samples must be >= 1")
    if FLAGS.plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise InputError("--plots needs matplotlib: pip install -e '.[plots]' (or pass "
                             "--noplots)") from None
    if FLAGS.dry_run:
        return dry_run.show("deeplab_dpc.analyze", dict(
            study=FLAGS.study, output_dir=FLAGS.output_dir, schedule=FLAGS.schedule,
            bootstrap_samples=FLAGS.bootstrap_samples, seed=FLAGS.seed, plots=FLAGS.plots),
            notes=cli.missing_notes(study=FLAGS.study))
    import_tensorflow()
    from deeplab_dpc.analyze import analysis
    from deeplab_dpc.search.study import Study

    study = Study(FLAGS.study)
    try:
        if study.settings is None:
            raise InputError(f"--study {FLAGS.study} holds no search yet")
        result = analysis.analyze(study, FLAGS.output_dir, FLAGS.schedule,
                                  FLAGS.bootstrap_samples, FLAGS.seed, FLAGS.plots)
    finally:
        study.close()
    print(analysis.format_summary(result))
    print(f"wrote {FLAGS.output_dir}/{analysis.ANALYSIS_FILE} and "
          f"{len(result['figures'])} figures", flush=True)


if __name__ == "__main__":
    cli.run(main)
