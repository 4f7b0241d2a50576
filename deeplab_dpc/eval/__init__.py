"""Evaluation. `python -m deeplab_dpc.eval` is `__main__.py` (flags only).

`metrics`: the confusion matrix and IoU conventions; `evaluator`: running a run's
checkpoints over a split, metrics.json and TensorBoard (also used by `vis`).
"""
