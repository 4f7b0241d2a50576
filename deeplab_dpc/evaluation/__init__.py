"""Evaluation: `metrics` (confusion matrix, IoU conventions) and `evaluator` (running
checkpoints over a split, metrics.json, TensorBoard) behind `python -m deeplab_dpc.eval`."""
