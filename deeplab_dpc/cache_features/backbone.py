"""The backbone a cache runs: that of a training run, or a bare (pretrained) one.

Either way it is `DeepLab`'s own preprocessing and backbone, in inference mode,
so cached features are what the head of a `DeepLab` would see at eval time.
"""
import os

from deeplab_dpc.errors import InputError


def _extractor(preprocess, backbone):
    def extract(images):
        return backbone(preprocess(images), training=False)["features"]

    return extract


def from_run(checkpoint_dir):
    """(extractor, settings, run config) of the backbone of a DeepLab run (its latest
    checkpoint, or the given checkpoint prefix)."""
    from deeplab_dpc import run_dir
    from deeplab_dpc.cache_features.writer import weights_hash

    config = run_dir.read_deeplab_config(checkpoint_dir)
    _, prefix = run_dir._resolve(checkpoint_dir)
    model, _ = run_dir.load_model(prefix)
    backbone = model.backbone
    settings = dict(
        backbone=_backbone_settings(model.backbone_name, model.depth_multiplier,
                                    model.output_stride, model.divisible_by),
        source=dict(kind="checkpoint", checkpoint=os.path.abspath(prefix)
                    if "://" not in prefix else prefix,
                    step=run_dir.checkpoint_step(prefix),
                    weights_sha256=weights_hash(backbone.weights)))
    return _extractor(model.get_layer("preprocess"), backbone), settings, config


def bare(model_variant, depth_multiplier=1.0, output_stride=16, backbone_weights=None,
         divisible_by=None):
    """(extractor, settings) of a backbone built alone, with `backbone_weights`
    ("imagenet", an .h5 file, or None for random weights: for tests only, seeded so
    that a rerun, such as a killed run's resume, builds the same ones)."""
    import keras

    from deeplab_dpc import backbones
    from deeplab_dpc.cache_features.writer import weights_hash

    if backbone_weights not in (None, "imagenet") and "://" not in backbone_weights \
            and not os.path.exists(backbone_weights):
        raise InputError(f"backbone_weights {backbone_weights} does not exist",
                         param="backbone_weights")
    if backbone_weights is None:
        keras.utils.set_random_seed(0)
    net = backbones.build_backbone(model_variant, output_stride=output_stride,
                                   depth_multiplier=depth_multiplier, weights=backbone_weights,
                                   divisible_by=divisible_by)
    preprocess = keras.layers.Rescaling(2.0 / 255.0, offset=-1.0, name="preprocess")
    settings = dict(
        backbone=_backbone_settings(model_variant, depth_multiplier, output_stride,
                                    divisible_by),
        source=dict(kind="weights", backbone_weights=backbone_weights,
                    weights_sha256=weights_hash(net.weights)))
    return _extractor(preprocess, net), settings


def _backbone_settings(name, depth_multiplier, output_stride, divisible_by):
    from deeplab_dpc import backbones

    settings = dict(model_variant=name, depth_multiplier=float(depth_multiplier),
                    output_stride=int(output_stride), feature_channels=int(
                        backbones.feature_channels(name, depth_multiplier, divisible_by)))
    if divisible_by is not None:  # only then: caches written before the flag still match
        settings["divisible_by"] = int(divisible_by)
    return settings
