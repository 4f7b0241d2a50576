"""Colormaps, overlays, label PNGs and Cityscapes' benchmark ids."""
import numpy as np
import pytest
from PIL import Image

from deeplab_dpc.vis import render as vis
from deeplab_dpc.data import datasets
from deeplab_dpc.errors import InputError


def test_colormap_types_are_the_references():
    assert tuple(vis.colormap("cityscapes")[13]) == (0, 0, 142)  # car
    assert tuple(vis.colormap("pascal")[15]) == (192, 128, 128)
    assert tuple(vis.colormap("pascal")[255]) == (224, 224, 192)
    # The reference's `create_ade20k_label_colormap` (the benchmark's palette), typed
    # from its source: not PASCAL's bit palette.
    ade20k = vis.colormap("ade20k")
    for i, rgb in {0: (0, 0, 0), 1: (120, 120, 120), 2: (180, 120, 120), 13: (150, 5, 61),
                   100: (255, 112, 0), 149: (102, 255, 0), 150: (92, 0, 255)}.items():
        assert tuple(ade20k[i]) == rgb, i
    info = datasets.DatasetInfo("mine", 2, colormap=((1, 2, 3), (4, 5, 6)))
    np.testing.assert_array_equal(vis.colormap(None, info)[:2], [(1, 2, 3), (4, 5, 6)])
    with pytest.raises(InputError, match="colormap_type 'viridis'"):
        vis.colormap("viridis")


def test_cityscapes_raw_predictions_are_label_ids():
    train_ids = np.array([[0, 13], [18, 255]])
    np.testing.assert_array_equal(vis.raw_prediction(train_ids, "cityscapes"),
                                  [[7, 26], [33, 255]])
    np.testing.assert_array_equal(vis.raw_prediction(train_ids, "pascal_voc_seg"), train_ids)


def test_label_pngs_keep_ids_and_overlay_blends(tmp_path):
    labels = np.array([[0, 300], [2, 1]])
    vis.write_png(str(tmp_path / "l.png"), vis.label_image(labels))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "l.png")), labels)
    assert vis.label_image(labels[:, :1]).dtype == np.uint8
    image = np.zeros((1, 1, 3), np.uint8)
    colour = np.full((1, 1, 3), 200, np.uint8)
    np.testing.assert_array_equal(vis.overlay(image, colour), [[[100, 100, 100]]])
