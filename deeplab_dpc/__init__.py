"""DeepLab with the Dense Prediction Cell (DPC) for TensorFlow 2 / Keras 3.

Layout: every `python -m deeplab_dpc.NAME` binary is `NAME/__main__.py` (its flags
and `main` only) and the rest of the package `NAME/` is the library it drives
(`train/`, `eval/`, `vis/`, `predict/`, `export/`, `stats/`, and the search's
binaries as they come). The top level holds what everything uses: `spec` (cells
and the search space), `model` (`DeepLab`), `run_dir` (the run directory),
`files` (atomic writes), `progress`, `cli`, `errors`, `common`; `layers/`,
`backbones/` and `data/` are the building blocks.
"""

__version__ = "0.1.0"
