"""The shared ops against independent numpy computations."""
import numpy as np
import pytest
import tensorflow as tf

from deeplab_dpc.layers import ops
from tests.layer_test_utils import run_layer_test


def np_resize_align_corners(x, out_h, out_w):
    """Bilinear resize where the corner pixels of input and output coincide."""
    n, h, w, c = x.shape
    out = np.zeros((n, out_h, out_w, c), np.float64)
    for i in range(out_h):
        fy = i * (h - 1) / (out_h - 1) if out_h > 1 else 0.0
        y0 = int(np.floor(fy)); y1 = min(y0 + 1, h - 1); dy = fy - y0
        for j in range(out_w):
            fx = j * (w - 1) / (out_w - 1) if out_w > 1 else 0.0
            x0 = int(np.floor(fx)); x1 = min(x0 + 1, w - 1); dx = fx - x0
            out[:, i, j] = ((1 - dy) * (1 - dx) * x[:, y0, x0] + (1 - dy) * dx * x[:, y0, x1]
                            + dy * (1 - dx) * x[:, y1, x0] + dy * dx * x[:, y1, x1])
    return out


def np_adaptive_avg_pool(x, gh, gw):
    """Cell i spans [floor(i*n/g), ceil((i+1)*n/g)) along each axis."""
    n, h, w, c = x.shape
    out = np.zeros((n, gh, gw, c))
    for i in range(gh):
        r0, r1 = (i * h) // gh, -((-(i + 1) * h) // gh)
        for j in range(gw):
            c0, c1 = (j * w) // gw, -((-(j + 1) * w) // gw)
            out[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("in_hw,out_hw", [((3, 5), (9, 17)), ((65, 129), (8, 8)),
                                           ((1, 1), (4, 6)), ((7, 4), (7, 4))])
def test_resize_bilinear_matches_numpy_and_tf1(in_hw, out_hw):
    x = np.random.default_rng(1).normal(size=(2, *in_hw, 3)).astype("float32")
    ours = ops.resize_bilinear(tf.constant(x), out_hw).numpy()
    # TF computes the sample positions in float32: 1e-4 covers it.
    np.testing.assert_allclose(ours, np_resize_align_corners(x, *out_hw), atol=1e-4)
    tf1 = tf.compat.v1.image.resize_bilinear(x, out_hw, align_corners=True).numpy()
    np.testing.assert_allclose(ours, tf1, atol=1e-6)


def test_resize_align_corners_hand_values():
    # 1-D ramp 0, 10 upsampled to 5 samples: corners kept, 2.5 steps between.
    x = np.array([0.0, 10.0], np.float32).reshape(1, 1, 2, 1)
    out = ops.resize_bilinear(tf.constant(x), (1, 5)).numpy().ravel()
    np.testing.assert_allclose(out, [0, 2.5, 5, 7.5, 10])


def test_grid_pooling_matrix_65_by_8_hand_values():
    m = ops.grid_pooling_matrix(65, 8).numpy()
    # 65 / 8 = 8.125: cell 0 = [0, 9), cell 1 = [8, 17), ..., cell 7 = [56, 65).
    assert np.count_nonzero(m[0]) == 9 and m[0, 0] == pytest.approx(1 / 9)
    assert np.flatnonzero(m[1]).tolist() == list(range(8, 17))
    assert np.flatnonzero(m[7]).tolist() == list(range(56, 65))
    np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=1e-6)
    assert (m > 0).any(axis=0).all()  # every position is pooled somewhere


@pytest.mark.parametrize("hw,grid", [((65, 129), (8, 4)), ((9, 7), (2, 4)),
                                      ((3, 5), (8, 8)), ((16, 16), (4, 4))])
def test_grid_pooling_matches_numpy(hw, grid):
    x = np.random.default_rng(2).normal(size=(2, *hw, 4)).astype("float32")
    layer = ops.PooledConvBNReLU(8, grid)
    ours = layer.pool(tf.constant(x)).numpy()
    np.testing.assert_allclose(ours, np_adaptive_avg_pool(x, *grid), atol=1e-5)


def test_reference_sliding_window_kernel():
    # The reference's own test values: 513 crop, OS 16, grid 4 -> kernel 9;
    # 257 crop, grid 1 -> 17 (the whole 17x17 map).
    assert ops.reference_pooling_kernel((513, 513), 16, (4, 4)) == (9, 9)
    assert ops.reference_pooling_kernel((257, 257), 16, (1, 1)) == (17, 17)
    x = np.random.default_rng(3).normal(size=(1, 17, 17, 2)).astype("float32")
    layer = ops.PooledConvBNReLU(4, (1, 1), pool_kernel=(17, 17))
    np.testing.assert_allclose(layer.pool(tf.constant(x)).numpy()[0, 0, 0],
                               x[0].mean(axis=(0, 1)), atol=1e-5)
    # A 9x9 stride-1 VALID window on 17x17 gives 9x9 positions.
    layer = ops.PooledConvBNReLU(4, (4, 4), pool_kernel=(9, 9))
    assert layer.pool(tf.constant(x)).shape == (1, 9, 9, 2)


def test_separable_branch_rate_1x6_matches_numpy():
    """Depthwise 3x3 dilated (1, 6) -> BN -> ReLU -> pointwise -> BN -> ReLU."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 7, 15, 3)).astype("float32")
    layer = ops.SeparableConvBNReLU(5, (1, 6), batch_norm_epsilon=1e-5)
    layer(tf.constant(x))
    dw = rng.normal(size=(3, 3, 3, 1)).astype("float32")
    pw = rng.normal(size=(1, 1, 3, 5)).astype("float32")
    bn1 = [rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2, 3)]
    bn2 = [rng.uniform(0.5, 2, 5), rng.normal(size=5), rng.normal(size=5), rng.uniform(0.5, 2, 5)]
    layer.depthwise.set_weights([dw])
    layer.depthwise_bn.set_weights([np.float32(v) for v in bn1])
    layer.pointwise.set_weights([pw])
    layer.pointwise_bn.set_weights([np.float32(v) for v in bn2])
    ours = layer(tf.constant(x), training=False).numpy()

    # numpy: SAME padding with dilation (1, 6) pads 1 row and 6 columns each side.
    pad = np.pad(x[0], ((1, 1), (6, 6), (0, 0)))
    d = np.zeros((7, 15, 3))
    for i in range(7):
        for j in range(15):
            for a in range(3):
                for b in range(3):
                    d[i, j] += pad[i + a, j + 6 * b] * dw[a, b, :, 0]
    g, beta, mean, var = bn1
    d = np.maximum((d - mean) / np.sqrt(var + 1e-5) * g + beta, 0)
    p = d @ pw[0, 0]
    g, beta, mean, var = bn2
    expected = np.maximum((p - mean) / np.sqrt(var + 1e-5) * g + beta, 0)
    np.testing.assert_allclose(ours[0], expected, rtol=1e-4, atol=1e-4)


def test_conv_bn_relu_layer(tmp_path):
    run_layer_test(ops.ConvBNReLU, dict(filters=4, kernel_size=3, rate=(2, 1),
                                        batch_norm_decay=0.9, weight_decay=1e-4),
                   (2, 9, 11, 3), (2, 9, 11, 4), tmp_path, expected_num_trainable_weights=3)


def test_separable_conv_layer(tmp_path):
    run_layer_test(ops.SeparableConvBNReLU, dict(filters=4, rate=(1, 3), batch_norm_decay=0.9),
                   (2, 9, 11, 3), (2, 9, 11, 4), tmp_path, expected_num_trainable_weights=6)


@pytest.mark.parametrize("kw", [dict(grid_size=(2, 4)), dict(grid_size=(4, 4), pool_kernel=(3, 3))])
def test_pyramid_pooling_layer(tmp_path, kw):
    run_layer_test(ops.PooledConvBNReLU, dict(filters=4, batch_norm_decay=0.9, **kw),
                   (2, 9, 11, 3), (2, 9, 11, 4), tmp_path, expected_num_trainable_weights=3)
