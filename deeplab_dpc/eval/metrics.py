"""mIOU from ONE confusion matrix accumulated over the whole split.

Conventions (the reference's `tf.metrics.mean_iou`, also Keras `MeanIoU`):
- rows are label classes, columns predicted classes; pixels labelled
  `ignore_label` are not counted at all (whatever was predicted there);
- IoU_c = TP / (TP + FP + FN), from the split's summed counts, not averaged
  over images (an average of per-image IoUs weighs small images like big ones);
- a class absent from both the labels and the predictions of the whole split
  has 0 / 0: its IoU is NaN (null in metrics.json) and it is left out of the
  mean. A class predicted but never labelled has IoU 0 and counts.
"""
import numpy as np
import tensorflow as tf


def confusion_matrix(labels, predictions, num_classes, ignore_label):
    """int64 [C, C] counts of (label, prediction) pairs, ignore pixels excluded.

    Args: int label and prediction maps of one shape (any rank), eager or traced.
    Labels outside [0, C) other than `ignore_label` must be refused before
    (`invalid_labels`); here they are dropped so that they cannot crash a kernel.
    """
    labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
    predictions = tf.reshape(tf.cast(predictions, tf.int64), [-1])
    keep = (labels != ignore_label) & (labels >= 0) & (labels < num_classes)
    return tf.math.confusion_matrix(tf.boolean_mask(labels, keep),
                                    tf.boolean_mask(predictions, keep),
                                    num_classes=num_classes, dtype=tf.int64)


def invalid_labels(labels, num_classes, ignore_label):
    """Per image of a batch [B, ...]: the largest label outside [0, C) that is not
    `ignore_label`, or -1 when every label is valid."""
    labels = tf.cast(labels, tf.int64)
    bad = (labels != ignore_label) & ((labels < 0) | (labels >= num_classes))
    axes = tf.range(1, tf.rank(labels))
    return tf.reduce_max(tf.where(bad, labels, tf.constant(-1, tf.int64)), axis=axes)


def per_class_iou(matrix):
    """float64 [C]: TP / (TP + FP + FN); NaN for classes absent from labels and predictions."""
    matrix = np.asarray(matrix, np.float64)
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(matrix):
    """Mean of `per_class_iou` over the classes that are present (NaN if none is)."""
    iou = per_class_iou(matrix)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def pixel_accuracy(matrix):
    """Correct pixels / counted pixels (NaN for an empty matrix)."""
    matrix = np.asarray(matrix, np.float64)
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else float("nan")
