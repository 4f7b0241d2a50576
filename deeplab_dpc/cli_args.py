"""Flag-value checks shared by the eval, vis, predict and export binaries.

No TensorFlow import: a bad flag is answered in a second, before the slow import.
(A candidate for `cli.py`, which stats and train also use.)
"""
from deeplab_dpc.errors import InputError


def require(flag_values, *names):
    """InputError naming the first of `names` that is unset."""
    for name in names:
        if not getattr(flag_values, name):
            raise InputError(f"--{name} is required")


def parse_size(values, flag):
    """`height,width` flag values -> (h, w), or None when unset."""
    if not values:
        return None
    try:
        size = tuple(int(v) for v in values)
    except ValueError:
        size = ()
    if len(size) != 2 or min(size) < 1:
        raise InputError(f"--{flag}: expected height,width, got {','.join(values)}")
    return size


def existing_path(path, flag):
    """`path` if it is a directory or a checkpoint prefix; InputError at once otherwise
    (cloud paths are left to the reader)."""
    import os

    if "://" not in path and not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise InputError(f"--{flag} {path} does not exist")
    return path
