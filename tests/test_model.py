"""The DeepLab model: shapes, config travel and `.keras` round trip."""
import json

import numpy as np
import pytest

from deeplab_dpc.errors import InputError
from deeplab_dpc.model import DeepLab
from deeplab_dpc.stats import complexity
from tests.records import TINY_MODEL

TINY = {k: v for k, v in TINY_MODEL.items() if k != "head"}  # each test names its head


def test_keras_round_trip_gives_identical_logits(tmp_path):
    cell = [{"kernel": 3, "rate": [1, 6], "op": "conv", "input": -1},
            {"op": "pyramid_pooling", "grid_size": [2, 4], "input": 0}]
    model = DeepLab(5, cell=cell, decoder_output_stride=4, **TINY)
    images = np.random.default_rng(0).uniform(0, 255, (2, 65, 97, 3)).astype("float32")
    logits = model(images, training=False).numpy()
    assert logits.shape == (2, 17, 25, 5)  # the decoder's stride 4
    path = tmp_path / "model.keras"
    model.save(path)
    import keras

    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, DeepLab)
    assert loaded.get_config()["cell"] == cell  # the cell travels inside the file
    np.testing.assert_array_equal(loaded(images, training=False).numpy(), logits)


def test_config_is_json_and_rebuilds_the_same_network():
    model = DeepLab(3, head="aspp", atrous_rates=(1, 2), **TINY)
    config = json.loads(json.dumps(model.get_config()))
    clone = DeepLab.from_config(config)
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    assert clone.get_config() == model.get_config()


@pytest.mark.parametrize("output_stride,expected", [(8, 9), (16, 5)])
def test_output_stride_and_dpc_rates(output_stride, expected):
    model = DeepLab(4, head="dpc", output_stride=output_stride, **TINY)
    assert model(np.zeros((1, 65, 65, 3), "float32")).shape == (1, expected, expected, 4)
    rates = [tuple(b.depthwise.dilation_rate) for b in model.head_layer.branches]
    assert rates[0] == (16 // output_stride, 6 * 16 // output_stride)


def test_aspp_runs_at_output_stride_32_and_dpc_refuses_it():
    model = DeepLab(4, head="aspp", output_stride=32, atrous_rates=(), **TINY)
    assert model(np.zeros((1, 65, 65, 3), "float32")).shape == (1, 3, 3, 4)
    with pytest.raises(InputError, match="output_stride 32"):
        DeepLab(4, head="dpc", output_stride=32, **TINY)


def test_input_is_raw_rgb():
    """The model maps [0, 255] to [-1, 1] itself."""
    model = DeepLab(2, **TINY)
    pre = model.get_layer("preprocess")
    out = pre(np.array([[[[0.0, 127.5, 255.0]]]], "float32")).numpy().ravel()
    np.testing.assert_allclose(out, [-1.0, 0.0, 1.0], atol=1e-6)


def test_model_complexity_splits_backbone_and_head():
    model = DeepLab(4, **TINY)
    c = complexity.model_complexity(model, (129, 129))
    assert c.feature_shape == (1, 9, 9, 80)
    assert c.total_params == c.backbone_params + c.head.trainable_params + 16 * 4 + 4
    assert c.total_macs == c.backbone_macs + c.head.branch_macs + c.head.projection_macs \
        + 9 * 9 * 16 * 4


def test_bad_arguments_are_refused():
    with pytest.raises(InputError, match="head"):
        DeepLab(4, head="psp", **TINY)
    with pytest.raises(InputError, match="decoder_output_stride"):
        DeepLab(4, decoder_output_stride=8, **TINY)
    # keras.Model takes **kwargs: a misspelt argument must not vanish into them
    with pytest.raises(TypeError, match="'backbon'"):
        DeepLab(4, backbon="xception_65", **TINY)
    with pytest.raises(TypeError, match="'weights'.*backbone_weights"):
        DeepLab(4, weights="imagenet", **TINY)
    assert DeepLab(4, name="net", trainable=False, **TINY).name == "net"


def test_head_follows_the_reference_rule():
    """No head given: a cell means the DPC; no cell means ASPP with no atrous branch
    (the reference's default rates: none), i.e. the 1x1 and image pooling branches."""
    cell = [{"kernel": 1, "op": "conv", "input": -1}]
    assert DeepLab(3, cell=cell, **TINY).head == "dpc"
    aspp = DeepLab(3, **TINY)
    assert aspp.head == "aspp" and aspp.atrous_rates == ()
    branches = {w.path.split("/")[1] for w in aspp.head_layer.weights}
    assert branches == {"aspp0", "image_pooling", "concat_projection"}, branches
    published = DeepLab(3, head="dpc", **TINY)
    assert published.cell.to_reference() == DeepLab(3, cell=published.cell, **TINY).cell \
        .to_reference()
    with pytest.raises(InputError, match="head 'x'"):
        DeepLab(3, head="x", **TINY)


def test_divisible_by_and_multi_grid_reach_the_backbone_and_the_config():
    # depth 0.25: the first block projects to 16 * 0.25 = 4 channels with DeepLab's
    # rounding (to 1, the default below depth 1.0); divisible_by=8 rounds 4 up to 8.
    options = dict(TINY, head="aspp")
    plain = DeepLab(3, **options)
    eight = DeepLab(3, divisible_by=8, **options)

    def project(model):
        return model.backbone.get_layer("expanded_conv_project").kernel.shape[-1]

    assert (project(plain), project(eight)) == (4, 8)
    assert eight.get_config()["divisible_by"] == 8
    assert DeepLab.from_config(eight.get_config()).count_params() == eight.count_params()
    with pytest.raises(InputError, match="multi_grid applies to the xception"):
        DeepLab(3, multi_grid=(1, 2, 4), **options)
    with pytest.raises(InputError, match="divisible_by applies to mobilenet_v2"):
        DeepLab(3, backbone="xception_41", divisible_by=8, head="aspp")
