"""ASPP: branch layout, literal rates, parameter count and serialization."""
import numpy as np
import pytest

from deeplab_dpc.layers import ASPP, Decoder
from tests.layer_test_utils import run_layer_test


@pytest.mark.parametrize("separable", [True, False])
def test_aspp_layer(tmp_path, separable):
    run_layer_test(ASPP, dict(filters=8, atrous_rates=(1, 2), separable=separable,
                              batch_norm_decay=0.9),
                   (2, 9, 11, 5), (2, 9, 11, 8), tmp_path)


def test_aspp_takes_rates_literally():
    layer = ASPP(atrous_rates=(12, 24, 36), output_stride=8)
    assert [l.name for l in layer.branches] == ["image_pooling", "aspp0", "aspp1", "aspp2", "aspp3"]
    assert [tuple(l.depthwise.dilation_rate) for l in layer.branches[2:]] == [
        (12, 12), (24, 24), (36, 36)]


def test_aspp_parameter_count_on_320_channels():
    layer = ASPP(filters=256, atrous_rates=(6, 12, 18))
    layer.build((None, 33, 33, 320))
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    # pooling 1x1 and aspp0: 2 * (320*256 + 512); three separable branches:
    # 3 * (9*320 + 640 + 320*256 + 512); projection 5*256*256 + 512.
    expected = 2 * (320 * 256 + 512) + 3 * (9 * 320 + 640 + 320 * 256 + 512) + 1280 * 256 + 512
    assert trainable == expected


def test_mobilenet_style_aspp_without_atrous_branches(tmp_path):
    layer = ASPP(filters=8, atrous_rates=())
    assert [l.name for l in layer.branches] == ["image_pooling", "aspp0"]


def test_decoder_layer(tmp_path):
    run_layer_test(Decoder, dict(filters=8, low_level_filters=4, batch_norm_decay=0.9),
                   [(2, 3, 4, 6), (2, 9, 13, 5)], (2, 9, 13, 8), tmp_path,
                   expected_num_trainable_weights=3 + 6 + 6)
