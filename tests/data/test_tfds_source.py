"""`tfds:cityscapes`: tfds' own builder, prepared offline from miniature manual zips.

tensorflow-datasets (and importlib_resources, which it needs undeclared) are hard
dependencies: nothing here skips when they are missing, so a broken install fails."""
import io
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from deeplab_dpc.data import datasets
from deeplab_dpc.data import input_pipeline as ip
from deeplab_dpc.errors import InputError

SOURCE = "tfds:cityscapes/semantic_segmentation"
SPLITS = {"train": 2, "val": 1, "test": 1}  # the builder lists all three folders


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def cityscapes_label_ids():
    """A full-size labelIds map: vertical stripes of road, car, bicycle and void ids."""
    label = np.zeros((1024, 2048), np.uint8)  # 0: unlabeled (void)
    label[:, 512:1024] = 7  # road
    label[:, 1024:1536] = 26  # car
    label[:, 1536:] = 33  # bicycle
    label[:100] = 5  # dynamic (void)
    return label


def _image(label_ids):
    """Colour = label id, so the pipeline's image and label can be checked together."""
    return np.repeat(label_ids[..., None] * 7, 3, axis=-1)


@pytest.fixture(scope="module")
def cityscapes_dirs(tmp_path_factory):
    """The two zips in the layout the real ones have; flat PNGs keep them ~KB."""
    manual_dir = tmp_path_factory.mktemp("manual")
    label = cityscapes_label_ids()
    image_png, label_png = _png(_image(label)), _png(label)
    with zipfile.ZipFile(manual_dir / "leftImg8bit_trainvaltest.zip", "w") as images, \
            zipfile.ZipFile(manual_dir / "gtFine_trainvaltest.zip", "w") as labels:
        for split, count in SPLITS.items():
            for i in range(count):
                stem = f"aachen_{i:06d}_000019"
                images.writestr(f"leftImg8bit/{split}/aachen/{stem}_leftImg8bit.png", image_png)
                labels.writestr(f"gtFine/{split}/aachen/{stem}_gtFine_labelIds.png", label_png)
    return str(tmp_path_factory.mktemp("tfds_data")), str(manual_dir)


def test_tfds_cityscapes_labels_become_train_ids(cityscapes_dirs):
    data_dir, manual_dir = cityscapes_dirs
    ds = ip.build_dataset(SOURCE, is_training=False, batch_size=1, data_dir=data_dir,
                          manual_dir=manual_dir)  # prepares, then reads "validation"
    examples = list(ds)
    assert len(examples) == SPLITS["val"]
    label_ids = cityscapes_label_ids()
    expected = datasets.cityscapes_label_id_to_train_id_table()[label_ids]
    assert set(np.unique(expected)) == {0, 13, 18, 255}
    ex = examples[0]
    np.testing.assert_array_equal(ex[ip.LABEL][0, ..., 0].numpy(), expected)
    np.testing.assert_array_equal(ex[ip.IMAGE][0].numpy(), _image(label_ids))
    assert ex[ip.FILENAME].numpy()[0] == b"aachen_000000_000019"

    # The training split runs through the same augmentation at the paper's crop.
    ds = ip.build_dataset(SOURCE, is_training=True, batch_size=2, crop_size=(769, 769),
                          seed=0, data_dir=data_dir)
    batch = next(iter(ds))
    assert batch[ip.IMAGE].shape == (2, 769, 769, 3)
    label, image = batch[ip.LABEL].numpy()[..., 0], batch[ip.IMAGE].numpy()[..., 0]
    assert set(np.unique(label)) <= {0, 13, 18, 255}
    # Far from stripe edges (bilinear blends there), colour still names the class.
    table = {0: 7 * 7, 13: 26 * 7, 18: 33 * 7}
    for train_id, colour in table.items():
        inside = label == train_id
        assert np.median(np.abs(image[inside] - colour)) == 0


def test_tfds_errors_are_one_line(cityscapes_dirs, tmp_path):
    dirs = dict(zip(("data_dir", "manual_dir"), cityscapes_dirs))  # prepares if not yet
    with pytest.raises(InputError, match="no split 'val'"):
        ip.build_dataset(SOURCE, is_training=False, batch_size=1, split="val", **dirs)
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=0)
    with pytest.raises(InputError, match="cannot be sharded"):
        ip.build_dataset(SOURCE, is_training=True, batch_size=2, input_context=context, **dirs)
    with pytest.raises(InputError, match="unsupported tfds dataset"):
        ip.build_dataset("tfds:voc", is_training=True, batch_size=1)
    with pytest.raises(InputError, match="(?i)manual") as error:
        ip.build_dataset(SOURCE, is_training=True, batch_size=1, data_dir=str(tmp_path),
                         manual_dir=str(tmp_path))
    assert "\n" not in str(error.value)
