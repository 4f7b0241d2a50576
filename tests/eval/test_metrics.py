"""mIOU conventions against hand-computed matrices, and the evaluator's plumbing."""
import json

import numpy as np
import pytest

from deeplab_dpc import run_dir
from deeplab_dpc.data import datasets
from deeplab_dpc.errors import InputError
from deeplab_dpc.eval import evaluator, metrics
from tests import records

IGNORE = 255


def test_confusion_matrix_counts_label_prediction_pairs_and_skips_ignore():
    labels = np.array([[0, 0, 1], [2, IGNORE, 1]])
    predictions = np.array([[0, 1, 1], [2, 0, 0]])
    expected = [[1, 1, 0],   # label 0: once right, once called 1
                [1, 1, 0],   # label 1: once right, once called 0
                [0, 0, 1]]   # the ignore pixel (predicted 0) counts nowhere
    matrix = metrics.confusion_matrix(labels, predictions, 3, IGNORE).numpy()
    np.testing.assert_array_equal(matrix, expected)


def test_iou_is_tp_over_tp_fp_fn_of_the_summed_matrix():
    matrix = np.array([[5, 1, 0],
                       [2, 3, 1],
                       [0, 0, 4]])
    # class 0: tp 5, fn 1, fp 2 -> 5/8; class 1: 3 / (3 + 3 + 1) = 3/7; class 2: 4/5
    np.testing.assert_allclose(metrics.per_class_iou(matrix), [5 / 8, 3 / 7, 4 / 5])
    assert metrics.mean_iou(matrix) == pytest.approx((5 / 8 + 3 / 7 + 4 / 5) / 3)
    assert metrics.pixel_accuracy(matrix) == pytest.approx(12 / 16)


def test_absent_class_is_nan_and_left_out_but_a_false_alarm_counts_zero():
    matrix = np.array([[4, 0, 0, 1],    # class 3 is predicted once, never labelled: IoU 0
                       [0, 2, 0, 0],
                       [0, 0, 0, 0],    # class 2: neither labelled nor predicted -> NaN
                       [0, 0, 0, 0]])
    iou = metrics.per_class_iou(matrix)
    assert np.isnan(iou[2])
    np.testing.assert_allclose(iou[[0, 1, 3]], [4 / 5, 1.0, 0.0])
    assert metrics.mean_iou(matrix) == pytest.approx((0.8 + 1.0 + 0.0) / 3)
    assert np.isnan(metrics.mean_iou(np.zeros((3, 3))))


def test_split_matrix_is_not_the_mean_of_image_mious():
    """One matrix over the split: a small image's miss weighs by its pixels."""
    big = metrics.confusion_matrix(np.zeros(90), np.zeros(90), 2, IGNORE)
    small = metrics.confusion_matrix(np.ones(10), np.zeros(10), 2, IGNORE)
    split = (big + small).numpy()
    np.testing.assert_array_equal(split, [[90, 0], [10, 0]])
    assert metrics.mean_iou(split) == pytest.approx((90 / 100 + 0.0) / 2)
    per_image = np.mean([metrics.mean_iou(big.numpy()), metrics.mean_iou(small.numpy())])
    assert per_image == pytest.approx((1.0 + 0.0) / 2)  # what averaging images would say


def test_invalid_labels_per_image():
    labels = np.array([[[0, 1], [IGNORE, 2]],
                       [[0, 7], [3, 9]]])
    np.testing.assert_array_equal(metrics.invalid_labels(labels, 3, IGNORE).numpy(), [-1, 9])


def test_report_is_strict_json_keyed_by_class_name():
    matrix = np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    report = evaluator.metrics_report(matrix, ("sky", "road", "boat"), step=7, eval_scales=[1.0])
    text = json.dumps(report, allow_nan=False)  # NaN would not be JSON
    assert json.loads(text)["per_class_iou"] == {"sky": 0.75, "road": 2 / 3, "boat": None}
    assert report["miou"] == pytest.approx((0.75 + 2 / 3) / 2)
    assert report["step"] == 7 and report["confusion_matrix"][0] == [3, 1, 0]


class _ConstantModel:
    """Predicts class 1 everywhere, at output stride 4, like a DeepLab's logits."""

    def __call__(self, images, training=False):
        import tensorflow as tf

        size = tf.shape(images)[1:3] // 4 + 1
        return tf.one_hot(tf.ones([tf.shape(images)[0], size[0], size[1]], tf.int32), 3)


def test_split_with_a_label_past_the_classes_names_split_and_file(tmp_path):
    info = datasets.DatasetInfo(name="tiny", num_classes=3, ignore_label=IGNORE)
    image = np.full((9, 13, 3), 100, np.uint8)
    good, bad = np.zeros((9, 13), np.uint8), np.zeros((9, 13), np.uint8)
    bad[4, 4] = 5
    good[0, :] = IGNORE
    data = records.write_records(tmp_path / "data", "val", [
        (image, good, "a.png"), (image, bad, "b.png")], info)

    dataset = evaluator.split_dataset(data, "val", info)
    with pytest.raises(InputError, match=r"val split: b\.png has label 5, outside \[0, 3\)"):
        evaluator.confusion_over_split(_ConstantModel(), dataset, 3, IGNORE, split="val",
                                       progress=False)

    matrix, count = evaluator.confusion_over_split(
        _ConstantModel(), dataset.take(1), 3, IGNORE, scales=(0.5, 1.0),
        add_flipped_images=True, split="val", progress=False)
    assert count == 1
    np.testing.assert_array_equal(matrix, [[0, 8 * 13, 0], [0, 0, 0], [0, 0, 0]])


def _fake_checkpoint(run_dir, step):
    """What CheckpointManager leaves for `ckpt-<step>`, as far as the watcher looks."""
    import tensorflow as tf

    prefix = str(run_dir / f"ckpt-{step}")
    (run_dir / f"ckpt-{step}.index").write_bytes(b"")
    tf.compat.v1.train.update_checkpoint_state(str(run_dir), prefix)
    return prefix


def test_follow_checkpoints_waits_for_new_ones_and_stops_at_the_last_step(tmp_path):
    first = _fake_checkpoint(tmp_path, 3)
    saved = []

    def sleep(seconds):  # "training" saves its next checkpoint while eval sleeps
        saved.append(_fake_checkpoint(tmp_path, 6))

    got = list(run_dir.follow_checkpoints(tmp_path, interval_secs=0, final_step=6,
                                            log=lambda line: None, sleep=sleep))
    assert got == [first, saved[0]]
    assert list(run_dir.follow_checkpoints(first, max_count=0)) == [first]


def test_one_evaluation_of_a_directory_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no checkpoint in"):
        list(run_dir.follow_checkpoints(tmp_path, max_count=1))
