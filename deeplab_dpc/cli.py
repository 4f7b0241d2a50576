"""Glue for the absl `python -m` entry points: one-line errors, quiet logs."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402

from deeplab_dpc.errors import InputError  # noqa: E402


def run(main):
    """`absl.app.run(main)`, reporting `InputError` as `error: ...` and exit code 2."""

    def _main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        try:
            return main(argv)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    app.run(_main)
