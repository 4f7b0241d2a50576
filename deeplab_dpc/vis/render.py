"""Colour label maps, overlays and PNGs: what `vis` and `predict` show users.

Colormaps are the reference's (`--colormap_type` pascal, cityscapes, ade20k) or,
by default, the dataset's own from its `dataset_info.json`.
"""
import io

import numpy as np
from PIL import Image

from deeplab_dpc import files
from deeplab_dpc.data import datasets
from deeplab_dpc.errors import InputError

COLORMAP_TYPES = ("pascal", "cityscapes", "ade20k")


def colormap(colormap_type=None, dataset_info=None):
    """A uint8 [256, 3] palette: one of `COLORMAP_TYPES`, else the dataset's."""
    if colormap_type is None:
        return (dataset_info.colormap_array() if dataset_info is not None
                else datasets.pascal_colormap(256))
    if colormap_type == "pascal":
        return datasets.pascal_colormap(256)
    cmap = np.zeros((256, 3), np.uint8)
    if colormap_type == "cityscapes":
        cmap[:len(datasets.CITYSCAPES_COLORMAP)] = datasets.CITYSCAPES_COLORMAP
    elif colormap_type == "ade20k":
        cmap[:len(datasets.ADE20K_COLORMAP)] = datasets.ADE20K_COLORMAP
    else:
        raise InputError(f"colormap_type {colormap_type!r}: expected one of "
                         f"{', '.join(COLORMAP_TYPES)}")
    return cmap


def colorize(labels, cmap):
    """uint8 RGB [H, W, 3] for class ids [H, W] (ids past the palette wrap to its end)."""
    return cmap[np.clip(labels, 0, len(cmap) - 1)]


def overlay(image, colored, alpha=0.5):
    """The colour map blended over the image, for checking boundaries by eye."""
    blend = (1 - alpha) * image.astype(np.float32) + alpha * colored.astype(np.float32)
    return np.clip(np.round(blend), 0, 255).astype(np.uint8)


def raw_prediction(labels, dataset_name):
    """Class ids to save as raw predictions: Cityscapes train ids become the label ids
    its benchmark server expects (as the reference's vis); other datasets' ids as is."""
    if dataset_name != "cityscapes":
        return labels
    table = np.full(256, 255, np.uint8)  # the ignore label stays 255
    table[:len(datasets.CITYSCAPES_TRAIN_ID_TO_LABEL_ID)] = datasets.CITYSCAPES_TRAIN_ID_TO_LABEL_ID
    return table[np.clip(labels, 0, 255)]


def label_image(labels):
    """Class ids as a PNG-ready array: uint8 when they fit, else uint16."""
    labels = np.asarray(labels)
    return labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16)


def write_png(path, array):
    """Writes a PNG atomically, so no reader sees half of one."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return files.write_atomically(path, buf.getvalue())
