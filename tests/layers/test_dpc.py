"""DensePredictionCell: wiring, parameter counts, rates and serialization."""
import numpy as np
import pytest
import tensorflow as tf

from deeplab_dpc import spec as spec_lib
from deeplab_dpc.errors import InputError
from deeplab_dpc.layers import DensePredictionCell
from tests.layer_test_utils import run_layer_test

SMALL_CELL = [
    {"kernel": 1, "op": "conv", "input": -1},
    {"kernel": 3, "rate": [1, 3], "op": "conv", "input": 0},
    {"op": "pyramid_pooling", "grid_size": [1, 2], "input": 1},
    {"kernel": 3, "rate": [6, 1], "op": "conv", "input": -1},
]


def test_dpc_layer(tmp_path):
    layer = run_layer_test(
        DensePredictionCell,
        dict(cell=SMALL_CELL, filters=8, output_stride=16, batch_norm_decay=0.9),
        (2, 9, 13, 5), (2, 9, 13, 8), tmp_path,
        # 1x1: conv+bn(2); sep: 2 convs + 2 bn (6); pooling 3; sep 6; projection 3.
        expected_num_trainable_weights=3 + 6 + 3 + 6 + 3)
    assert layer.get_config()["cell"] == SMALL_CELL


def test_published_cell_parameter_count_on_2048_channels():
    layer = DensePredictionCell()  # the published cell by default
    layer.build((None, 65, 129, 2048))
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    moving = sum(int(np.prod(w.shape)) for w in layer.non_trainable_weights)
    # Hand count: b0 = 3*3*2048 + 2*2048 + 2048*256 + 2*256 = 547,328;
    # b1..b4 = 4 * (3*3*256 + 2*256 + 256*256 + 2*256) = 275,456;
    # projection = 1280*256 + 2*256 = 328,192.  Sum 1,150,976 (the reference's).
    assert trainable == 1_150_976
    assert moving == 9_216


def test_wiring_follows_the_spec():
    """The cell's output equals the branches composed by hand along the spec."""
    layer = DensePredictionCell(SMALL_CELL, filters=4, dropout_rate=0.0)
    x = tf.random.normal((1, 6, 7, 3), seed=1)
    y = layer(x, training=False)
    b = layer.branches
    o0 = b[0](x)
    o1 = b[1](o0)
    o2 = b[2](o1)
    o3 = b[3](x)
    expected = layer.projection(tf.concat([o0, o1, o2, o3], -1))
    np.testing.assert_allclose(y.numpy(), expected.numpy(), atol=1e-6)


@pytest.mark.parametrize("output_stride,factor", [(16, 1), (8, 2), (4, 4)])
def test_rates_scale_with_output_stride(output_stride, factor):
    layer = DensePredictionCell(output_stride=output_stride)
    rates = [tuple(l.depthwise.dilation_rate) for l in layer.branches]
    assert rates == [(1 * factor, 6 * factor), (18 * factor, 15 * factor),
                     (6 * factor, 3 * factor), (factor, factor), (6 * factor, 21 * factor)]


def test_output_stride_32_is_refused():
    with pytest.raises(InputError, match="output_stride 32"):
        DensePredictionCell(output_stride=32)


def test_invalid_cell_is_refused_with_the_branch_named():
    bad = [{"kernel": 3, "rate": [1, 5], "op": "conv", "input": -1}]
    with pytest.raises(InputError, match="branch 0"):
        DensePredictionCell(bad)


def test_reference_pooling_kernel_from_crop_size():
    cell = [{"op": "pyramid_pooling", "grid_size": [4, 2], "input": -1}]
    layer = DensePredictionCell(cell, filters=4, image_pooling_crop_size=(513, 513))
    assert layer.branches[0].pool_kernel == (9, 17)
    assert layer.get_config()["image_pooling_crop_size"] == [513, 513]


def test_accepts_cell_spec_objects_and_json():
    spec = spec_lib.published_cell()
    a = DensePredictionCell(spec).get_config()["cell"]
    b = DensePredictionCell(spec.to_json()).get_config()["cell"]
    assert a == b == spec.to_reference()
