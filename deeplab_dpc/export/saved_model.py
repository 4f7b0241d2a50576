"""SavedModel export.

The SavedModel is a `predict.serving.ServingModule`: the same prediction code as
eval, so the exported model scores what eval scored. It loads with plain
`tf.saved_model.load`, without this package (its layers are traced into the
graph), and carries the model config, cell and class names inside.
"""
import os

import tensorflow as tf

from deeplab_dpc import files
from deeplab_dpc.errors import InputError


def check_export_path(export_path):
    """Refuses to replace a directory that is not a previous SavedModel (checked before
    the slow save, so a typo like --export_path=. costs nothing)."""
    if tf.io.gfile.exists(export_path) and tf.io.gfile.listdir(export_path) and not (
            tf.io.gfile.exists(os.path.join(export_path, "saved_model.pb"))):
        raise InputError(f"export_path {export_path} exists and is not a SavedModel; "
                         "refusing to replace it", param="export_path")


def export_saved_model(module, export_path):
    """Saves `module` with the `serving_default` and `metadata` signatures.

    On a local disk it is written beside the target and renamed into place, so
    a model server watching `export_path` never loads half a model; object
    stores cannot rename a directory, so there it is written in place. A
    previous export there is replaced.
    """
    check_export_path(export_path)
    export_path = export_path.rstrip("/")
    signatures = {"serving_default": module.serve, "metadata": module.metadata}
    if "://" in export_path:
        tf.saved_model.save(module, export_path, signatures=signatures)
        return export_path
    with files.atomic_path(export_path) as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
    return export_path
