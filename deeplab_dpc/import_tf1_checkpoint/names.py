"""Which variable of a reference (TF1 slim) checkpoint each Keras weight of `DeepLab`
takes: the converter's table, as data.

Keras forbids `/` in layer names and nests sublayers differently, so the names
differ in a fixed way: each rule is a regular expression over a Keras weight path
(`weight.path`) and the template of its TF1 name (`re.Match.expand` syntax). The
first rule that matches wins; a weight that no rule matches is a bug in this
table, reported as such. The tests check the table against variable listings of
the original TF1 graphs (every reference variable taken exactly once).
"""
import re

# slim's variable names inside a conv or batch-norm scope.
_BN = r"(?P<stat>gamma|beta|moving_mean|moving_variance)"

MOBILENET_V2 = (
    (r"Conv1/kernel", r"MobilenetV2/Conv/weights"),
    (rf"bn_Conv1/{_BN}", r"MobilenetV2/Conv/BatchNorm/\g<stat>"),
    # The first inverted residual has no expansion and no number in either name.
    (r"expanded_conv_depthwise/kernel", r"MobilenetV2/expanded_conv/depthwise/depthwise_weights"),
    (r"expanded_conv_(?P<op>depthwise|project)_BN/" + _BN,
     r"MobilenetV2/expanded_conv/\g<op>/BatchNorm/\g<stat>"),
    (r"expanded_conv_project/kernel", r"MobilenetV2/expanded_conv/project/weights"),
    (r"block_(?P<n>\d+)_depthwise/kernel",
     r"MobilenetV2/expanded_conv_\g<n>/depthwise/depthwise_weights"),
    (r"block_(?P<n>\d+)_(?P<op>expand|project)/kernel",
     r"MobilenetV2/expanded_conv_\g<n>/\g<op>/weights"),
    (r"block_(?P<n>\d+)_(?P<op>expand|depthwise|project)_BN/" + _BN,
     r"MobilenetV2/expanded_conv_\g<n>/\g<op>/BatchNorm/\g<stat>"),
)

# `{scope}` is the model variant (xception_41, xception_65, xception_71).
XCEPTION = (
    (r"(?P<flow>entry_flow)_(?P<conv>conv1_[12])/kernel", r"{scope}/\g<flow>/\g<conv>/weights"),
    (rf"(?P<flow>entry_flow)_(?P<conv>conv1_[12])_BN/{_BN}",
     r"{scope}/\g<flow>/\g<conv>/BatchNorm/\g<stat>"),
    (r"(?P<flow>entry_flow|middle_flow|exit_flow)_(?P<block>block\d+)_(?P<unit>unit_\d+)_"
     r"(?P<op>separable_conv\d_depthwise)/kernel",
     r"{scope}/\g<flow>/\g<block>/\g<unit>/xception_module/\g<op>/depthwise_weights"),
    (r"(?P<flow>entry_flow|middle_flow|exit_flow)_(?P<block>block\d+)_(?P<unit>unit_\d+)_"
     r"(?P<op>separable_conv\d_pointwise|shortcut)/kernel",
     r"{scope}/\g<flow>/\g<block>/\g<unit>/xception_module/\g<op>/weights"),
    (r"(?P<flow>entry_flow|middle_flow|exit_flow)_(?P<block>block\d+)_(?P<unit>unit_\d+)_"
     rf"(?P<op>separable_conv\d_depthwise|separable_conv\d_pointwise|shortcut)_BN/{_BN}",
     r"{scope}/\g<flow>/\g<block>/\g<unit>/xception_module/\g<op>/BatchNorm/\g<stat>"),
)

# Head and decoder, below their scope. Our layers nest `conv`/`bn` (a 1x1 or 3x3 conv),
# a pooled branch's `conv/conv` and `conv/bn`, and a separable conv's `depthwise`,
# `depthwise_bn`, `pointwise`, `pointwise_bn`; slim names them `{unit}/weights`,
# `{unit}/BatchNorm/*`, `{unit}_depthwise/...` and `{unit}_pointwise/...`.
HEAD = (
    (r"(?P<unit>\w+)/conv/conv/kernel", r"\g<unit>/weights"),
    (rf"(?P<unit>\w+)/conv/bn/{_BN}", r"\g<unit>/BatchNorm/\g<stat>"),
    (r"(?P<unit>\w+)/conv/kernel", r"\g<unit>/weights"),
    (rf"(?P<unit>\w+)/bn/{_BN}", r"\g<unit>/BatchNorm/\g<stat>"),
    (r"(?P<unit>\w+)/depthwise/kernel", r"\g<unit>_depthwise/depthwise_weights"),
    (r"(?P<unit>\w+)/pointwise/kernel", r"\g<unit>_pointwise/weights"),
    (rf"(?P<unit>\w+)/(?P<op>depthwise|pointwise)_bn/{_BN}",
     r"\g<unit>_\g<op>/BatchNorm/\g<stat>"),
)
# Our head scopes -> the reference's: the DPC lives in `meta_architecture`, ASPP's
# units at the top level.
HEAD_SCOPES = {"dense_prediction_cell/": "meta_architecture/", "aspp/": "",
               "decoder/": "decoder/"}
LOGITS = {"logits/kernel": "logits/semantic/weights", "logits/bias": "logits/semantic/biases"}

_COMPILED = {}


def _compile(table):
    return [(re.compile(pattern), template) for pattern, template in table]


def _backbone_rules(backbone):
    if backbone not in _COMPILED:
        if backbone.startswith("mobilenet_v2"):
            table = MOBILENET_V2
        elif backbone.startswith("xception_"):
            table = tuple((p, t.replace("{scope}", backbone)) for p, t in XCEPTION)
        else:
            raise ValueError(f"no TF1 name table for backbone {backbone!r}")
        _COMPILED[backbone] = _compile(table)
    return _COMPILED[backbone]


_HEAD_RULES = _compile(HEAD)


def _expand(rules, path):
    for pattern, template in rules:
        match = pattern.fullmatch(path)
        if match:
            return match.expand(template)
    return None


def tf1_name(keras_path, backbone):
    """The reference checkpoint's name for the Keras weight at `keras_path` of a
    `DeepLab` on `backbone`."""
    name = LOGITS.get(keras_path)
    for ours, theirs in HEAD_SCOPES.items():
        if name is None and keras_path.startswith(ours):
            rest = _expand(_HEAD_RULES, keras_path[len(ours):])
            name = theirs + rest if rest is not None else None
    if name is None:
        name = _expand(_backbone_rules(backbone), keras_path)
    if name is None:
        raise ValueError(f"no TF1 name rule for the Keras weight {keras_path} ({backbone})")
    return name


# ------------------------------------------------------ checkpoint variables left unused
# Variables a reference checkpoint may hold that no `DeepLab` weight takes, by kind. Any
# other unused variable is an error: it means the model built is not the one saved.
ALLOWED_UNUSED = (
    ("global step", r"global_step"),
    # Training state: slim's Momentum slots (DeepLab), RMSProp/Adam in ImageNet runs.
    ("optimizer slots", r".+/(Momentum|RMSProp(_1)?|Adam(_1)?)|beta[12]_power"),
    # ExponentialMovingAverage shadow copies. The reference's eval, vis and export restore
    # the variables themselves (a plain Saver), so we take those values, not these.
    ("moving averages", r".+/ExponentialMovingAverage"),
    # An ImageNet checkpoint's classifier, and MobileNet-v2's layer 19 (1280 channels),
    # past DeepLab's final endpoint `layer_18`.
    ("ImageNet classifier", r"(xception_\d+/logits|MobilenetV2/Logits|MobilenetV2/Conv_1)/.+"),
)
_ALLOWED = [(kind, re.compile(pattern)) for kind, pattern in ALLOWED_UNUSED]

# The reference's scopes of the last layers (`get_extra_layer_scopes`): what
# `initialize_last_layer=False` skips. Ours -> theirs, so that a checkpoint's head of
# another kind (ASPP under a DPC model, say) is skipped as the reference skips it.
LAST_LAYER_SCOPES = {
    "logits": ("logits/",),
    "head": ("image_pooling/", "aspp", "concat_projection/", "meta_architecture/"),
    "decoder": ("decoder/",),
}

# An unused variable of one of these scopes suggests the flag that would have used it,
# by the head the model was built with.
FLAG_HINTS = {
    "dpc": (("image_pooling/", "the checkpoint holds an ASPP head: leave out "
                               "dense_prediction_cell_json"),
            ("decoder/", "the checkpoint holds a decoder: pass decoder_output_stride=4")),
    "aspp": (("meta_architecture/", "the checkpoint holds a dense prediction cell: pass its "
                                    "dense_prediction_cell_json"),
             ("decoder/", "the checkpoint holds a decoder: pass decoder_output_stride=4"),
             ("aspp", "the checkpoint's ASPP has other branches: check atrous_rates"),
             ("image_pooling/", "the checkpoint's ASPP pools images: check "
                                "add_image_level_feature")),
}


def allowed_unused_kind(name):
    """The kind of an unused checkpoint variable the import may leave alone, or None."""
    for kind, pattern in _ALLOWED:
        if pattern.fullmatch(name):
            return kind
    return None


def flag_hints(unused, head):
    """For unused variables of a model with `head` ("dpc" or "aspp"): the flags that
    would have used them, most telling first."""
    return [hint for scope, hint in FLAG_HINTS[head]
            if any(name.startswith(scope) for name in unused)]
