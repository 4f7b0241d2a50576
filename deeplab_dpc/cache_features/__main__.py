"""`python -m deeplab_dpc.cache_features`: the proxy task's feature cache.

    python -m deeplab_dpc.cache_features --checkpoint_dir=runs/quickstart \
        --feature_cache_dir=caches/quickstart --splits=train,minival --image_scale=0.5

runs the backbone of a training run (or `--model_variant` with
`--backbone_weights`) over whole images and writes its features; the search
reads them with `--feature_cache_dir`. Rerunning a killed command resumes it.
"""
from absl import flags

from deeplab_dpc import cli
from deeplab_dpc.errors import InputError
from deeplab_dpc.tf_import import import_tensorflow

FLAGS = flags.FLAGS
flags.DEFINE_string("feature_cache_dir", None, "Folder to write the cache into.")
flags.DEFINE_string("checkpoint_dir", None, "A DeepLab run directory (or checkpoint prefix) "
                    "whose backbone to run; its run config gives the dataset.")
flags.DEFINE_string("model_variant", None, "Without --checkpoint_dir: the backbone to build.")
flags.DEFINE_string("model_preset", None, "Instead of --model_variant: the backbone of "
                    "this preset (stats --list_presets).")
flags.DEFINE_float("depth_multiplier", 1.0, "With --model_variant: MobileNet-v2 depth.")
flags.DEFINE_integer("output_stride", 16, "With --model_variant: backbone output stride.")
flags.DEFINE_integer("divisible_by", None, "With --model_variant: MobileNet-v2 channel "
                     "rounding; unset: 8 at depth 1.0, else 1 (8 for ImageNet weights).")
flags.DEFINE_string("backbone_weights", None, "With --model_variant: 'imagenet' or an .h5 "
                    "file (unset: random weights, for tests).")
flags.DEFINE_string("dataset", None, "Dataset name (default: the run's, else synthetic).")
flags.DEFINE_string("dataset_dir", None, "TFRecords (default: the run's; synthetic: "
                    "generated once).")
flags.DEFINE_list("splits", ["train", "minival"], "Splits to cache.")
flags.DEFINE_float("image_scale", None, "Resize factor of whole images, as eval resizes "
                   "(default: the run's fixed training scale, 0.5 on the synthetic set, else 1).")
flags.DEFINE_bool("cache_flip", False, "Also cache the features of the flipped image.")
flags.DEFINE_enum("cache_dtype", "float16", ["float16", "float32"], "Stored feature dtype.")
flags.DEFINE_integer("holdout_from_train", 0, "Write a minival split of N images of "
                     "--train_split, left out of its cache (datasets without minival).")
flags.DEFINE_string("train_split", "train", "The training split (of --holdout_from_train).")
flags.DEFINE_integer("holdout_seed", 0, "Seed that picks the held-out images.")
flags.DEFINE_integer("images_per_shard", 100, "Images per TFRecord shard.")


def _default_scale(run_config, dataset):
    train = (run_config or {}).get("train", {})
    low, high = train.get("min_scale_factor"), train.get("max_scale_factor")
    if low is not None and low == high:
        return float(low)
    return 0.5 if dataset == "synthetic" else 1.0


def _dry_run(request, variant, depth_multiplier, output_stride):
    """The backbone that would be cached (built, not restored; no weights fetched)."""
    import dataclasses

    from deeplab_dpc import dry_run, run_dir
    from deeplab_dpc.model import DeepLab

    if FLAGS.checkpoint_dir:
        model = DeepLab.from_config(run_dir.read_deeplab_config(FLAGS.checkpoint_dir)["model"])
    else:
        model = DeepLab(1, backbone=variant, depth_multiplier=depth_multiplier,
                        output_stride=output_stride, divisible_by=FLAGS.divisible_by)
    return dry_run.show(
        "deeplab_dpc.cache_features",
        dict(dataclasses.asdict(request), checkpoint_dir=FLAGS.checkpoint_dir,
             model_variant=model.backbone_name, backbone_weights=FLAGS.backbone_weights,
             dataset=FLAGS.dataset, dataset_dir=FLAGS.dataset_dir),
        dry_run.model_facts(model), notes=["the backbone's figures are the cache's cost; "
                                           "the head shown is only a placeholder"])


def _bare_backbone():
    """(model_variant, depth_multiplier, output_stride) of --model_variant or of
    --model_preset; a flag that contradicts the preset is refused."""
    if not FLAGS.model_preset:
        return FLAGS.model_variant, FLAGS.depth_multiplier, FLAGS.output_stride
    from deeplab_dpc import presets

    cli.check_against_preset(FLAGS, {flag: FLAGS[flag].value for flag in (
        "model_variant", "depth_multiplier", "output_stride") if FLAGS[flag].present})
    preset = presets.get_preset(FLAGS.model_preset).model
    return preset["backbone"], preset["depth_multiplier"], preset["output_stride"]


def main(argv):
    del argv
    from deeplab_dpc.cache_features.writer import CacheRequest

    cli.require(FLAGS, "feature_cache_dir")
    variant, depth_multiplier, output_stride = _bare_backbone()
    if bool(FLAGS.checkpoint_dir) == bool(variant):
        raise InputError("give one of --checkpoint_dir (a training run) or --model_variant "
                         "(a bare backbone; or --model_preset)")
    if FLAGS.checkpoint_dir:
        cli.existing_path(FLAGS.checkpoint_dir, "checkpoint_dir")
    request = lambda scale: CacheRequest(  # noqa: E731
        FLAGS.feature_cache_dir, tuple(FLAGS.splits), scale, FLAGS.cache_flip,
        FLAGS.cache_dtype, FLAGS.holdout_from_train, FLAGS.train_split, FLAGS.holdout_seed,
        FLAGS.images_per_shard)
    # `is None`, not `or`: --image_scale=0 is refused, not taken for unset.
    request(1.0 if FLAGS.image_scale is None else FLAGS.image_scale)  # before TF loads
    import_tensorflow()
    if FLAGS.dry_run:
        return _dry_run(request(FLAGS.image_scale or 1.0), variant, depth_multiplier,
                        output_stride)
    from deeplab_dpc.cache_features import backbone
    from deeplab_dpc.cache_features.writer import write_cache
    from deeplab_dpc.eval.evaluator import resolve_dataset

    run_config = None
    if FLAGS.checkpoint_dir:
        extractor, settings, run_config = backbone.from_run(FLAGS.checkpoint_dir)
        settings["train"] = run_config.get("train", {})
    else:
        extractor, settings = backbone.bare(variant, depth_multiplier, output_stride,
                                            FLAGS.backbone_weights, FLAGS.divisible_by)
    dataset = FLAGS.dataset or ((run_config or {}).get("train", {}).get("dataset")) or "synthetic"
    dataset_dir = FLAGS.dataset_dir or ((run_config or {}).get("train", {}).get("dataset_dir"))
    if not dataset_dir and dataset == "synthetic":
        from deeplab_dpc.data import synthetic

        dataset_dir = synthetic.ensure_dataset(synthetic.default_dataset_dir())
    dataset_dir, info = resolve_dataset({"dataset": {"name": dataset}, "train": {}},
                                        dataset, dataset_dir)
    scale = FLAGS.image_scale if FLAGS.image_scale is not None else _default_scale(
        run_config, info.name)
    write_cache(extractor, request(scale), settings, dataset_dir, info)


if __name__ == "__main__":
    cli.run(main)
