"""eval, export, predict and vis on one tiny run, as a user runs them.

A module fixture saves a tiny MobileNet-v2 DPC model (untrained, BN statistics
set: training it would cost more than all the rest) as the trainer saves its
runs, beside four 97x193 synthetic scenes. Eval and export (SavedModel + TFLite)
run at scales 0.75 and 1 with flips; the export is then scored in a fresh
process that never imports deeplab_dpc.
"""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from deeplab_dpc.data import datasets, images, synthetic
from tests import records, run_fixtures
from tests.cli_utils import assert_one_line_error, run_binary

HERE = os.path.dirname(os.path.abspath(__file__))
SCALES = ("0.75", "1")
STEPS = 30
SYNTHETIC_SIZE = run_fixtures.SYNTHETIC_SIZE


def _ok(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A data directory and a run directory saved as the trainer saves them."""
    root = tmp_path_factory.mktemp("export")
    data = run_fixtures.write_synthetic_split(root / "data")
    model = run_fixtures.calibrated_tiny_model(len(synthetic.CLASSES), SYNTHETIC_SIZE)
    run_fixtures.save_run(root / "run", model, datasets.read_dataset_info(data), step=STEPS,
                          train_settings=dict(dataset="synthetic", dataset_dir=data,
                                              training_number_of_steps=STEPS))
    return root


def _photos(folder):
    """Users' images: odd sizes, RGBA PNG and greyscale JPEG."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (61, 83, 4), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (40, 150), dtype=np.uint8)).save(folder / "b.jpg")
    return {"a": (61, 83), "b": (40, 150)}


@pytest.mark.slow
def test_eval_export_predict_and_vis_agree(run):
    """One test, so that the binaries run once however xdist splits the module:
    eval, export, predict and vis side by side, then the export in a fresh process."""
    jobs = {
        "eval": ("deeplab_dpc.eval", f"--checkpoint_dir={run / 'run'}",
                 f"--eval_logdir={run / 'eval'}", "--max_number_of_evaluations=1",
                 "--add_flipped_images", *[f"--eval_scales={s}" for s in SCALES]),
        "export": ("deeplab_dpc.export", f"--checkpoint_path={run / 'run'}",
                   f"--export_path={run / 'exported'}", "--add_flipped_images", "--tflite",
                   "--crop_size=97,193", *[f"--inference_scales={s}" for s in SCALES]),
        "predict": ("deeplab_dpc.predict", f"--checkpoint_dir={run / 'run'}",
                    f"--image_glob={run / 'photos'}/*", f"--output_dir={run / 'predicted'}",
                    "--add_flipped_images", *[f"--inference_scales={s}" for s in SCALES]),
        "vis": ("deeplab_dpc.vis", f"--checkpoint_dir={run / 'run'}",
                f"--vis_logdir={run / 'vis'}", "--also_save_raw_predictions",
                "--max_number_of_iterations=1", "--colormap_type=cityscapes"),
    }
    photos = _photos(run / "photos")
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        results = {k: pool.submit(run_binary, *args) for k, args in jobs.items()}
    results = {k: _ok(r.result()) for k, r in results.items()}
    assert "val: 4/4 images" in results["eval"].stdout  # progress

    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    _check_fresh_process_scores_like_eval(run, metrics)
    _check_serving_signature(run)
    _check_predictions_match_the_export(run, photos)
    _check_vis(run)


def _check_fresh_process_scores_like_eval(run, metrics):
    assert metrics["step"] == STEPS and metrics["eval_scales"] == [0.75, 1.0]
    assert set(metrics["per_class_iou"]) == set(synthetic.CLASSES)
    check = subprocess.run(
        [sys.executable, os.path.join(HERE, "exported_model_check.py"), str(run / "exported"),
         str(run / "data" / "val-*"), str(len(synthetic.CLASSES)), "255"],
        capture_output=True, text=True, timeout=600, cwd=str(run))
    assert check.returncode == 0, check.stderr[-3000:]
    result = json.loads(check.stdout.strip().splitlines()[-1])
    assert result["deeplab_dpc_imported"] is False
    assert result["class_names"] == list(synthetic.CLASSES)
    assert result["model_config"]["cell"] == json.loads(
        (run / "run" / "model_config.json").read_text())["model"]["cell"]
    miou, agree = result["miou"], result["agreement_with_saved_model"]
    assert miou["saved_model"] == pytest.approx(metrics["miou"], abs=1e-6)
    assert agree["saved_model_batched"] == 1.0  # [1, H, W, 3], as the reference's clients
    assert agree["tflite_float"] >= 0.99
    print(f"\nmIOU eval {metrics['miou']:.4f}, SavedModel {miou['saved_model']:.4f}, TFLite "
          f"float {miou['tflite_float']:.4f} ({100 * agree['tflite_float']:.2f}% pixels agree), "
          f"dynamic-range quantized {miou['tflite_dynamic_range_quant']:.4f} "
          f"({100 * agree['tflite_dynamic_range_quant']:.2f}% agree)")
    assert abs(miou["tflite_dynamic_range_quant"] - miou["tflite_float"]) < 0.05
    assert agree["tflite_dynamic_range_quant"] >= 0.8  # an untrained model has near ties


def _check_serving_signature(run):
    """Any size works, an image or a batch (as the reference's clients send it), each
    batched image answered as it is alone; a wrong dtype, rank or channel count, or an
    empty image, fails with a message that says so."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(run / "exported"))
    serve = loaded.signatures["serving_default"]
    images = np.random.default_rng(3).integers(0, 256, (2, 50, 31, 3), dtype=np.uint8)
    alone = [serve(image=tf.constant(image)) for image in images]
    for out in alone:
        assert out["semantic"].shape == (50, 31) and out["probabilities"].shape == (50, 31, 8)
    for batch in (images[:1], images):
        out = serve(image=tf.constant(batch))
        assert out["semantic"].shape == batch.shape[:3]
        assert out["probabilities"].shape == batch.shape[:3] + (8,)
        for i, want in enumerate(alone[:len(batch)]):
            np.testing.assert_array_equal(out["semantic"][i], want["semantic"])
            np.testing.assert_allclose(out["probabilities"][i], want["probabilities"], atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a uint8 tensor"):
        serve(image=tf.zeros([50, 31, 3], tf.float32))
    for shape in ([50, 31], [1, 1, 50, 31, 3], [50, 31, 4], [2, 50, 31, 4]):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"image must be a uint8 tensor of shape \[height, width, 3\] "
                                 r"or \[batch, height, width, 3\]"):
            serve(image=tf.zeros(shape, tf.uint8))
    for shape in ([0, 31, 3], [2, 50, 0, 3], [0, 50, 31, 3]):
        with pytest.raises(tf.errors.InvalidArgumentError, match="image is empty"):
            serve(image=tf.zeros(shape, tf.uint8))
    meta = loaded.signatures["metadata"]()
    assert json.loads(meta["cell_spec_json"].numpy()) == json.loads(
        loaded.model_config_json.numpy())["cell"]
    np.testing.assert_array_equal(meta["inference_scales"].numpy(), [0.75, 1.0])


def _check_predictions_match_the_export(run, photos):
    """predict's PNGs from the checkpoint are the SavedModel's answers, at any size."""
    from deeplab_dpc.predict.serving import Segmenter

    segmenter = Segmenter.from_saved_model(str(run / "exported"))
    for name, size in photos.items():
        labels = np.asarray(Image.open(run / "predicted" / f"{name}.png"))
        colour = np.asarray(Image.open(run / "predicted" / f"{name}_color.png"))
        assert labels.shape == size and labels.dtype == np.uint8 and colour.shape == size + (3,)
        # Decoded as predict decodes (as training does: TensorFlow's JPEG decoder).
        image = images.read_image(str(next((run / "photos").glob(f"{name}.*"))),
                                  exif_transpose=True)
        np.testing.assert_array_equal(labels, segmenter.predict(image))
        np.testing.assert_array_equal(colour, segmenter.colorize(labels))


def _check_vis(run):
    results = sorted(os.listdir(run / "vis" / "segmentation_results"))
    assert results == [f"{i:06d}_{kind}.png" for i in range(4)
                       for kind in ("image", "overlay", "prediction")]
    raw = sorted(os.listdir(run / "vis" / "raw_segmentation_results"))
    assert raw == [f"val_{i:05d}.png" for i in range(4)]
    labels = np.asarray(Image.open(run / "vis" / "raw_segmentation_results" / raw[0]))
    prediction = np.asarray(Image.open(run / "vis" / "segmentation_results" /
                                       "000000_prediction.png"))
    cmap = np.zeros((256, 3), np.uint8)
    cmap[:19] = datasets.CITYSCAPES_COLORMAP
    assert labels.shape == SYNTHETIC_SIZE and labels.max() < 8
    np.testing.assert_array_equal(prediction, cmap[labels])


def _bad_runs(run, tmp):
    """(binary, args, words the error line must hold) for each kind of bad input."""
    corrupt = tmp / "corrupt"
    shutil.copytree(run / "run", corrupt)
    for index in corrupt.glob("*.index"):
        index.write_bytes(b"not a checkpoint index")

    xception = tmp / "xception"
    xception.mkdir()
    config = json.loads((run / "run" / "model_config.json").read_text())
    config["model"].update(backbone="xception_65", cell=None)
    (xception / "model_config.json").write_text(json.dumps(config))

    info = datasets.DatasetInfo(name="mislabelled", num_classes=8, ignore_label=255)
    label = np.zeros((20, 30), np.uint8)
    label[5, 5] = 9
    mislabelled = records.write_records(tmp / "mislabelled", "val", [
        (np.zeros((20, 30, 3), np.uint8), label, "frame_7.png")], info)

    evaluate = ["deeplab_dpc.eval", f"--eval_logdir={tmp / 'eval'}",
                "--max_number_of_evaluations=1"]
    return [
        (*evaluate, f"--checkpoint_dir={tmp / 'missing'}", ("does not exist",)),
        ("deeplab_dpc.export", f"--checkpoint_path={run / 'run' / 'ckpt-999'}",
         f"--export_path={tmp / 'y'}", ("ckpt-999 does not exist", f"has ckpt-{STEPS}")),
        (*evaluate, f"--checkpoint_dir={corrupt}", ("cannot restore checkpoint", f"ckpt-{STEPS}")),
        (*evaluate, f"--checkpoint_dir={run / 'run'}", f"--dataset_dir={mislabelled}",
         ("val split", "frame_7.png", "label 9")),
        ("deeplab_dpc.export", f"--checkpoint_path={xception}", f"--export_path={tmp / 'x'}",
         "--tflite", "--crop_size=97,193", ("mobilenet_v2", "xception_65")),
    ]


def test_export_reads_the_references_checkpoint_name(run, tmp_path):
    """The reference's export command line names a checkpoint model.ckpt-N."""
    result = _ok(run_binary("deeplab_dpc.export",
                            f"--checkpoint_path={run / 'run' / f'model.ckpt-{STEPS}'}",
                            f"--export_path={tmp_path / 'exported'}", "--dry_run"))
    assert f"read as {run / 'run' / f'ckpt-{STEPS}'}" in result.stderr
    assert f"checkpoint_path = {run / 'run' / f'ckpt-{STEPS}'}" in result.stdout
    assert not (tmp_path / "exported").exists()


def test_bad_input_is_one_line_without_traceback(run, tmp_path):
    cases = _bad_runs(run, tmp_path)
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        results = list(pool.map(lambda case: run_binary(*case[:-1]), cases))
    for case, result in zip(cases, results):
        assert_one_line_error(result, *case[-1])
