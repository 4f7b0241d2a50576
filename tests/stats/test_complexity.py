"""Multiply-add and parameter counts against hand arithmetic."""
import keras

from deeplab_dpc.stats import complexity
from deeplab_dpc.layers import ASPP, DensePredictionCell


def test_conv_costs_of_a_small_network_by_hand():
    x = keras.Input((9, 10, 3))
    y = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="a")(x)  # 5x5 out
    y = keras.layers.DepthwiseConv2D(3, dilation_rate=(2, 3), padding="same", name="b")(y)
    y = keras.layers.Conv2D(6, 1, name="c")(y)
    costs = {c.path: c for c in complexity.conv_costs(keras.Model(x, y), (1, 9, 10, 3))}
    assert costs["a"].params == 3 * 3 * 3 * 4 and costs["a"].macs == 5 * 5 * 108
    # A dilated depthwise conv counts its real 5x5 output, not a space-to-batch grid.
    assert costs["b"].params == 3 * 3 * 4 and costs["b"].macs == 5 * 5 * 36
    assert costs["c"].params == 4 * 6 and costs["c"].macs == 5 * 5 * 24


def test_published_dpc_costs_on_a_1025x2049_image_at_os16():
    h = complexity.head_complexity(DensePredictionCell(), (1, 65, 129, 320))
    # b0: 9*320 + 320*256 = 84,800; b1..b4: 4 * (9*256 + 256*256) = 271,360.
    assert h.branch_params == 356_160
    assert h.branch_macs == 356_160 * 65 * 129  # 2.99B, the paper's 3.00B
    assert h.projection_params == 1280 * 256
    # BN gamma+beta: b0's depthwise on 320 channels, then ten on 256 (b0..b4 after
    # their pointwise = 5, b1..b4 after their depthwise = 4, the projection = 1).
    assert h.trainable_params == 356_160 + 1280 * 256 + 2 * (320 + 10 * 256)


def test_aspp_costs_follow_the_paper_madds_rule():
    h = complexity.head_complexity(ASPP(atrous_rates=(6, 12, 18)), (1, 65, 129, 2048))
    per_position = 2048 * 256 + 3 * (9 * 2048 + 2048 * 256)  # 1x1 + three separable
    pooling = 2048 * 256  # image pooling's 1x1 conv runs at one position
    assert h.branch_params == per_position + pooling
    assert h.branch_macs == per_position * 65 * 129 + pooling
    assert abs(h.branch_macs / 1e9 - 18.12) / 18.12 < 0.015
