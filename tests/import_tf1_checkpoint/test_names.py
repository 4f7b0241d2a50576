"""The TF1 name table against variable listings of the original TF1 graphs: every
reference variable is taken by exactly one Keras weight of the same shape."""
import json
import os

import pytest

from deeplab_dpc import spec

LISTINGS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures",
                        "tf1_variables")


def _listing(name):
    with open(os.path.join(LISTINGS, name)) as f:
        return [(n, tuple(shape)) for n, shape in json.load(f)]


def _mapped(model, backbone):
    from deeplab_dpc.import_tf1_checkpoint import names

    return [(names.tf1_name(w.path, backbone), tuple(w.shape)) for w in model.weights]


def _check(mapped, listing):
    assert len({n for n, _ in mapped}) == len(mapped), "two Keras weights take one variable"
    # The same (name, shape) pairs; the order differs where slim creates a unit's
    # shortcut after its separable convs.
    assert sorted(mapped) == sorted(listing)


def test_mobilenet_v2_with_aspp_without_atrous_branches_takes_the_272_variables():
    from deeplab_dpc.model import DeepLab

    model = DeepLab(21, backbone="mobilenet_v2", head="aspp", atrous_rates=())
    _check(_mapped(model, "mobilenet_v2"), _listing("mobilenet_v2_aspp_21classes.json"))


def test_xception_71_with_the_published_dpc_and_decoder_takes_the_812_variables():
    from deeplab_dpc.model import DeepLab

    model = DeepLab(19, backbone="xception_71", head="dpc", decoder_output_stride=4)
    listing = _listing("xception_71_dpc_decoder4_19classes.json")
    assert len(listing) == 812
    _check(_mapped(model, "xception_71"), listing)


def test_every_kind_of_branch_and_aspp_unit_has_a_distinct_reference_name():
    from deeplab_dpc.import_tf1_checkpoint import names
    from deeplab_dpc.model import DeepLab

    cell = spec.CellSpec((spec.Branch(-1, spec.Conv1x1()),
                          spec.Branch(0, spec.PyramidPooling(2, 2)),
                          spec.Branch(1, spec.SeparableConv(3, 6))))
    model = DeepLab(19, backbone="mobilenet_v2", head="dpc", cell=cell, depth_multiplier=0.5,
                    decoder_output_stride=4)
    head = {w.path: names.tf1_name(w.path, "mobilenet_v2") for w in model.weights
            if w.path.startswith("dense_prediction_cell/")}
    # The reference's dense_prediction_cell.py: 1x1 conv and pooling branches are
    # slim.conv2d in scope branch{i}; a 3x3 conv is a split separable conv.
    assert head["dense_prediction_cell/branch0/conv/kernel"] == "meta_architecture/branch0/weights"
    assert head["dense_prediction_cell/branch1/conv/conv/kernel"] == \
        "meta_architecture/branch1/weights"
    assert head["dense_prediction_cell/branch1/conv/bn/moving_mean"] == \
        "meta_architecture/branch1/BatchNorm/moving_mean"
    assert head["dense_prediction_cell/branch2/depthwise/kernel"] == \
        "meta_architecture/branch2_depthwise/depthwise_weights"
    assert head["dense_prediction_cell/branch2/pointwise_bn/gamma"] == \
        "meta_architecture/branch2_pointwise/BatchNorm/gamma"
    mapped = _mapped(model, "mobilenet_v2")
    assert len({n for n, _ in mapped}) == len(mapped)

    aspp = DeepLab(21, backbone="mobilenet_v2", head="aspp", atrous_rates=(6, 12, 18))
    names_ = {n for n, _ in _mapped(aspp, "mobilenet_v2")}
    assert {"aspp1_depthwise/depthwise_weights", "aspp3_pointwise/BatchNorm/beta",
            "image_pooling/weights", "aspp0/BatchNorm/gamma"} <= names_


def test_mobilenet_v2_at_depth_half_with_dpc_and_decoder_has_337_variables():
    from deeplab_dpc.model import DeepLab

    model = DeepLab(19, backbone="mobilenet_v2", head="dpc", depth_multiplier=0.5,
                    decoder_output_stride=4)
    mapped = _mapped(model, "mobilenet_v2")
    assert len(mapped) == 337 and len({n for n, _ in mapped}) == 337


def test_a_weight_without_a_rule_is_named_in_the_error():
    from deeplab_dpc.import_tf1_checkpoint import names

    with pytest.raises(ValueError, match="no TF1 name rule for the Keras weight foo/kernel"):
        names.tf1_name("foo/kernel", "mobilenet_v2")
