"""A reference checkpoint as a run directory that eval, vis, predict and export take.

The directory is what training writes (`model_config.json` with the model, cell
included, and the dataset; a `ckpt-N` checkpoint, N the checkpoint's global step)
plus the import report, `tf1_import.json`. It is written under a temporary name
and renamed into place when complete.
"""
import os

import tensorflow as tf

from deeplab_dpc import files, run_dir
from deeplab_dpc.data import datasets
from deeplab_dpc.errors import InputError
from deeplab_dpc.import_tf1_checkpoint import converter
from deeplab_dpc.model import DeepLab


def _dataset_info(dataset, dataset_dir, num_classes, prefix, reader):
    info = datasets.get_dataset_info(dataset, dataset_dir) if dataset or dataset_dir else None
    if num_classes is None:
        num_classes = info.num_classes if info else converter.num_classes(reader)
    if num_classes is None:
        raise InputError(f"checkpoint {prefix} has no logits: pass num_classes or dataset",
                         param=("num_classes", "dataset"))
    if info is None:
        return datasets.DatasetInfo(name="imported", num_classes=num_classes)
    if info.num_classes != num_classes:
        raise InputError(f"num_classes {num_classes}, but dataset {info.name} has "
                         f"{info.num_classes} classes", param="num_classes")
    return info


def import_checkpoint(tf1_checkpoint, model_options, output_dir, num_classes=None,
                      dataset=None, dataset_dir=None):
    """Builds `DeepLab(num_classes, **model_options)`, sets all its weights from the
    reference checkpoint and writes the run directory `output_dir` (which must not
    hold files yet). The class count comes from `num_classes`, else the dataset
    (`dataset` name or `dataset_dir`'s `dataset_info.json`), else the checkpoint's
    logits. Returns the `converter.ImportReport`.

    Every weight must come from the checkpoint: a model with fresh last layers is no
    model to evaluate (training takes a TF1 checkpoint directly for that)."""
    files.check_output_dir(output_dir, "output_dir")
    if tf.io.gfile.isdir(output_dir) and tf.io.gfile.listdir(output_dir):
        raise InputError(f"output_dir {output_dir} already holds files; name a new folder",
                         param="output_dir")
    prefix, reader = converter.open_tf1_checkpoint(tf1_checkpoint)
    info = _dataset_info(dataset, dataset_dir, num_classes, prefix, reader)
    model = DeepLab(info.num_classes, **{"name": "deeplab", **model_options})
    report = converter.load_tf1_weights(model, prefix)
    # Saved as the step the reference reached, so that eval's follow mode stops there.
    step = max(report.global_step or 0, 1)
    record = {"tf1_checkpoint": prefix, "dataset": info.name, "dataset_dir": dataset_dir,
              "training_number_of_steps": step}
    with files.atomic_path(output_dir) as tmp:
        run_dir.write_run_config(tmp, model, info, record)
        tf.train.CheckpointManager(run_dir.make_checkpoint(model), tmp, max_to_keep=1,
                                   checkpoint_name=run_dir.CHECKPOINT_NAME).save(step)
        files.write_json_atomically(os.path.join(tmp, converter.REPORT_FILE),
                                    report.to_dict())
    return report
