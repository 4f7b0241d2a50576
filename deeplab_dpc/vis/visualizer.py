"""Visualising a run's predictions on a split, as the reference's `vis.py`."""
import os

import tensorflow as tf

from deeplab_dpc import run_dir
from deeplab_dpc.data import input_pipeline as ip
from deeplab_dpc.eval import evaluator
from deeplab_dpc.predict.inference import check_scales, predict_labels
from deeplab_dpc.progress import Progress
from deeplab_dpc.vis import render

RESULTS, RAW_RESULTS = "segmentation_results", "raw_segmentation_results"


def visualize_run(checkpoint_dir, vis_logdir, dataset=None, dataset_dir=None, vis_split="val",
                  scales=(1.0,), add_flipped_images=False, colormap_type=None,
                  also_save_raw_predictions=False, interval_secs=300, max_iterations=0,
                  log=None, resize=None):
    """Writes `vis_logdir/segmentation_results/{i:06d}_{image,prediction,overlay}.png`
    (and class-id PNGs named after the images under `raw_segmentation_results/`) for
    each checkpoint `run_dir.follow_checkpoints` yields; yields (prefix, images)."""
    log = log or (lambda line: print(line, flush=True))
    scales = check_scales(scales)
    run = run_dir.read_deeplab_config(checkpoint_dir)
    dataset_dir, info = evaluator.resolve_dataset(run, dataset, dataset_dir)
    resize = evaluator.run_resize(run, **(resize or {}))
    cmap = render.colormap(colormap_type, info)
    results = os.path.join(vis_logdir, RESULTS)
    raw_results = os.path.join(vis_logdir, RAW_RESULTS)
    prefixes = run_dir.follow_checkpoints(
        checkpoint_dir, interval_secs, max_iterations,
        run.get("train", {}).get("training_number_of_steps"), log=log)
    for prefix, model, _ in run_dir.restored_models(prefixes):
        evaluator.check_classes(model, info, f"dataset {info.name!r}")
        predict = tf.function(
            lambda images: predict_labels(model, images, scales, add_flipped_images),
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        log(f"visualising {prefix} on {info.name} {vis_split}")
        count = 0
        with Progress(info.splits.get(vis_split), vis_split) as bar:
            for i, example in enumerate(evaluator.split_dataset(dataset_dir, vis_split, info,
                                                                    resize=resize)):
                labels = predict(example[ip.IMAGE])[0].numpy()
                image = example[ip.IMAGE][0].numpy().astype("uint8")
                colored = render.colorize(labels, cmap)
                for kind, array in (("image", image), ("prediction", colored),
                                    ("overlay", render.overlay(image, colored))):
                    render.write_png(os.path.join(results, f"{i:06d}_{kind}.png"), array)
                if also_save_raw_predictions:
                    name = (os.path.basename(example[ip.FILENAME][0].numpy().decode())
                            or f"{i:06d}")
                    render.write_png(
                        os.path.join(raw_results, os.path.splitext(name)[0] + ".png"),
                        render.label_image(render.raw_prediction(labels, info.name)))
                count = i + 1
                bar.update()
        log(f"wrote {count} visualisations to {results}")
        yield prefix, count
