"""Glue for the absl `python -m` entry points: one-line errors, flag-value checks.

No TensorFlow import: a bad flag is answered in a second, before the slow import.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from deeplab_dpc.errors import InputError  # noqa: E402


def _parse_flags(argv):
    """absl's parser, but a bad flag (an unknown one in a flagfile, a bad value) is
    one `error:` line like every other bad input, not absl's two-line usage note."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def run(main, flag_names=None):
    """`absl.app.run(main)`, reporting flag errors and `InputError` as one
    `error: ...` line with exit code 2. The library's parameter names in an
    InputError are shown as flags (`flag_names`: parameter -> flag where they differ)."""

    def _main(argv):
        if len(argv) > 1:
            print(f"error: unexpected arguments (flags start with --): {' '.join(argv[1:])}",
                  file=sys.stderr)
            sys.exit(2)
        if not flags.FLAGS["verbosity"].present:
            # absl.app raises logging to INFO, which lets TensorFlow's checkpoint
            # saver log a line per save; our binaries print their own progress.
            logging.set_verbosity(logging.WARNING)
        try:
            return main(argv)
        except InputError as e:
            print(f"error: {e.as_flags(flag_names)}", file=sys.stderr)
            sys.exit(2)

    app.run(_main, flags_parser=_parse_flags)


def require(flag_values, *names):
    """InputError naming the first of `names` that is unset."""
    for name in names:
        if not getattr(flag_values, name):
            raise InputError(f"--{name} is required")


def parse_ints(values, flag, length=None, minimum=None, expected="integers"):
    """A list flag's values as a tuple of ints (the one integer-list parser of the
    binaries); InputError naming the flag if one is not an integer, the count is not
    `length` or a value is below `minimum`."""
    try:
        ints = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        ints = None
    if ints is None or (length is not None and len(ints) != length) or (
            minimum is not None and ints and min(ints) < minimum):
        raise InputError(f"--{flag}: expected {expected}, got {','.join(map(str, values))}")
    return ints


def parse_size(values, flag):
    """`height,width` flag values -> (h, w), or None when unset."""
    if not values:
        return None
    return parse_ints(values, flag, length=2, minimum=1, expected="height,width")


def existing_path(path, flag):
    """`path` if it is a directory or a checkpoint prefix; InputError at once otherwise
    (cloud paths are left to the reader)."""
    if "://" not in path and not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise InputError(f"--{flag} {path} does not exist")
    return path


def model_options(flag_values, head=None):
    """`DeepLab` arguments from the reference's model flags, which every binary that
    builds a model defines alike. `head=None`: the reference's rule, the cell of
    --dense_prediction_cell_json when given, else ASPP."""
    cell = None
    if flag_values.dense_prediction_cell_json:
        if head not in (None, "dpc"):
            raise InputError("--dense_prediction_cell_json needs --head=dpc")
        from deeplab_dpc.spec import CellSpec

        cell = CellSpec.from_file(flag_values.dense_prediction_cell_json)
    return dict(
        backbone=flag_values.model_variant, head=head or ("dpc" if cell else "aspp"),
        cell=cell, atrous_rates=tuple(flag_values.atrous_rates or ()),
        aspp_with_separable_conv=flag_values.aspp_with_separable_conv,
        add_image_level_feature=flag_values.add_image_level_feature,
        image_pooling_crop_size=parse_size(flag_values.image_pooling_crop_size,
                                           "image_pooling_crop_size"),
        output_stride=flag_values.output_stride,
        decoder_output_stride=flag_values.decoder_output_stride,
        depth_multiplier=flag_values.depth_multiplier)
