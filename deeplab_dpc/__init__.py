"""DeepLab with the Dense Prediction Cell (DPC) for TensorFlow 2 / Keras 3.

Layout: every `python -m deeplab_dpc.NAME` binary is `NAME/__main__.py` (its flags
and `main` only) and the rest of the package `NAME/` is the library it drives
(`train/`, `eval/`, `vis/`, `predict/`, `export/`, `stats/`, and the search's
binaries as they come). The top level holds what everything uses: `spec` (cells
and the search space), `model` (`DeepLab`), `run_dir` (the run directory),
`files` (atomic writes), `progress`, `cli`, `errors`, `common`; `layers/`,
`backbones/` and `data/` are the building blocks.
"""

import functools

__version__ = "0.1.0"


def build_model(preset=None, **kwargs):
    """A `DeepLab` from a named preset (`python -m deeplab_dpc.stats --list_presets`),
    with `kwargs` for the rest; a kwarg that contradicts the preset is refused.
    Without a preset, `DeepLab(**kwargs)`."""
    from deeplab_dpc import presets
    from deeplab_dpc.model import DeepLab

    return DeepLab(**(presets.apply_preset(preset, kwargs) if preset else kwargs))


@functools.lru_cache(maxsize=None)
def code_version():
    """`__version__`, plus `+g<commit>` (and `.dirty` for uncommitted changes to the
    package) when it runs from a git checkout: a study's results say which code scored
    them."""
    import os
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))

    def git(*args):
        return subprocess.run(["git", "-C", here, *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        top = git("rev-parse", "--show-toplevel")
        if os.path.realpath(os.path.join(top, "deeplab_dpc")) != os.path.realpath(here):
            return __version__  # installed inside some other repository
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", here)
    except (OSError, subprocess.SubprocessError):
        return __version__  # not a checkout, or no git
    return f"{__version__}+g{commit}{'.dirty' if dirty else ''}"
