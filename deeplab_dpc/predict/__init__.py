"""Inference and serving. `python -m deeplab_dpc.predict` is `__main__.py` (flags only).

`inference`: the one multi-scale prediction path (eval, vis, export and predict all
use it); `serving`: `ServingModule` (what an exported SavedModel holds) and
`Segmenter` (segments users' images from a checkpoint or a SavedModel).
"""
