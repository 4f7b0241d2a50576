"""`python -m deeplab_dpc.train`: trains DeepLab with the DPC (or ASPP); reference flag names.

    python -m deeplab_dpc.train --train_logdir=runs/dpc --flagfile=train.flags

Rerunning the same command resumes from the last checkpoint in --train_logdir.
Eval, vis and export read everything they need from that directory.
"""
import dataclasses
import os

from absl import flags

from deeplab_dpc import cli, files
from deeplab_dpc.tf_import import import_tensorflow
from deeplab_dpc.errors import InputError

FLAGS = flags.FLAGS
# Data.
flags.DEFINE_string("train_logdir", None, "Run directory: checkpoints, summaries, config.")
flags.DEFINE_string("dataset", None, "Dataset name (a dataset_info.json in --dataset_dir "
                    "wins); unset: synthetic, or pascal_voc_seg (the reference's) with "
                    "--dataset_dir.")
flags.DEFINE_string("dataset_dir", None,
                    "Directory of TFRecords; unset with --dataset=synthetic: generated once.")
flags.DEFINE_string("train_split", "train", "Split whose shards to train on.")
flags.DEFINE_list("train_crop_size", ["513", "513"], "Training crop as height,width.")
flags.DEFINE_integer("train_batch_size", 8, "Global batch per call (all replicas).")
flags.DEFINE_float("min_scale_factor", 0.5, "Smallest random scale.")
flags.DEFINE_float("max_scale_factor", 2.0, "Largest random scale.")
flags.DEFINE_float("scale_factor_step_size", 0.25, "Scale step; 0 = any scale in range.")
cli.define_resize_flags()
# Model.
cli.define_model_flags()
flags.DEFINE_integer("head_filters", 256, "Channels of the head and decoder.")
flags.DEFINE_string("backbone_weights", None, "Fresh runs: 'imagenet' or a .h5 file.")
# Optimisation.
flags.DEFINE_float("base_learning_rate", 1e-4, "Learning rate after the slow start.")
flags.DEFINE_enum("learning_policy", "poly", ["poly", "step"], "Learning rate decay.")
flags.DEFINE_float("learning_power", 0.9, "Exponent of the poly decay.")
flags.DEFINE_integer("learning_rate_decay_step", 2000, "Steps per decay (step policy).")
flags.DEFINE_float("learning_rate_decay_factor", 0.1, "Factor per decay (step policy).")
flags.DEFINE_integer("training_number_of_steps", 30000, "Optimizer steps in all.")
flags.DEFINE_integer("slow_start_step", 0, "Steps at --slow_start_learning_rate first.")
flags.DEFINE_float("slow_start_learning_rate", 1e-4, "Learning rate of the slow start.")
flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
flags.DEFINE_float("weight_decay", 4e-5, "L2 weight decay (slim's: wd * sum(w^2) / 2).")
flags.DEFINE_bool("fine_tune_batch_norm", True, "Train BN; false = frozen, inference mode.")
flags.DEFINE_float("batch_norm_decay", 0.9997, "BN moving-average decay.")
flags.DEFINE_float("top_k_percent_pixels", 1.0, "Fraction of hardest pixels in the loss.")
flags.DEFINE_integer("hard_example_mining_step", 0, "Steps to ramp top-k from 1.0.")
flags.DEFINE_string("tf_initial_checkpoint", None, "Run dir, checkpoint prefix, .keras, "
                    ".weights.h5 or a reference TF1 checkpoint to start from (ignored when "
                    "resuming).")
flags.DEFINE_bool("initialize_last_layer", True, "Also take the logits from it.")
flags.DEFINE_bool("last_layers_contain_logits_only", False,
                  "With --noinitialize_last_layer: skip only logits, not head/decoder.")
flags.DEFINE_integer("gradient_accumulation_steps", 1, "Micro-batches per optimizer step.")
flags.DEFINE_enum("mixed_precision", "none", ["none", "bfloat16", "float16"],
                  "Compute dtype; float16 uses loss scaling.")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the forward/backward pass.")
# Distribution.
flags.DEFINE_enum("distribution_strategy", "default",
                  ["default", "mirrored", "multi_worker_mirrored", "tpu"], "tf.distribute.")
flags.DEFINE_integer("num_gpus", None, "mirrored: GPUs to use (0 = logical CPUs).")
flags.DEFINE_string("tpu", None, "tpu: TPU name or grpc:// address.")
flags.DEFINE_bool("sync_batch_norm", False, "BN statistics over all replicas.")
# Bookkeeping.
flags.DEFINE_integer("save_interval_steps", 1000, "Steps between checkpoints.")
flags.DEFINE_integer("log_steps", 10, "Steps between log lines and scalar summaries.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, data order and augmentation.")
cli.define_accepted("num_clones", 1, "integer", "one process drives every device: "
                    "--distribution_strategy=mirrored --num_gpus=N")
cli.define_accepted("save_interval_secs", 1200, "integer", "checkpoints every "
                    "--save_interval_steps")
cli.define_accepted("save_summaries_secs", 600, "integer", "summaries every --log_steps")
cli.define_accepted("save_summaries_images", False, "bool", "image summaries are always "
                    "written, every --save_interval_steps")
cli.define_accepted("startup_delay_steps", 15, "integer", "workers start together "
                    "(--distribution_strategy=multi_worker_mirrored)")
cli.define_accepted("num_replicas", 1, "integer", "workers come from TF_CONFIG "
                    "(--distribution_strategy=multi_worker_mirrored)")
cli.define_accepted("num_ps_tasks", 0, "integer", "no parameter servers: all-reduce")
cli.define_accepted("task", 0, "integer", "the worker's index comes from TF_CONFIG")
cli.define_accepted("master", "", "string", "the cluster comes from TF_CONFIG or --tpu")
cli.define_accepted("profile_logdir", None, "string", "see bench/ for profiles")

def _model_options():
    return dict(cli.model_options(FLAGS), head_filters=FLAGS.head_filters,
                batch_norm_decay=FLAGS.batch_norm_decay, weight_decay=FLAGS.weight_decay)


def _check_dataset_dir():
    """--dataset_dir must exist (except in a dry run, which only looks for it)."""
    if FLAGS.dataset_dir:
        if ("://" not in FLAGS.dataset_dir and not os.path.isdir(FLAGS.dataset_dir)
                and not FLAGS.dry_run):
            raise InputError(f"--dataset_dir {FLAGS.dataset_dir}: no such directory")
    elif cli.default_dataset(FLAGS) != "synthetic":
        raise InputError(f"--dataset_dir is required for --dataset={FLAGS.dataset}")


def make_config(dataset_dir):
    from deeplab_dpc.train.config import TrainConfig

    files.check_output_dir(FLAGS.train_logdir, "train_logdir")
    return TrainConfig(
        train_logdir=FLAGS.train_logdir, dataset_dir=dataset_dir,
        dataset=cli.default_dataset(FLAGS),
        train_split=FLAGS.train_split, model=_model_options(),
        backbone_weights=FLAGS.backbone_weights,
        train_crop_size=cli.parse_size(FLAGS.train_crop_size, "train_crop_size"),
        train_batch_size=FLAGS.train_batch_size, min_scale_factor=FLAGS.min_scale_factor,
        max_scale_factor=FLAGS.max_scale_factor,
        scale_factor_step_size=FLAGS.scale_factor_step_size, **cli.resize_options(FLAGS),
        base_learning_rate=FLAGS.base_learning_rate, learning_policy=FLAGS.learning_policy,
        learning_power=FLAGS.learning_power,
        learning_rate_decay_step=FLAGS.learning_rate_decay_step,
        learning_rate_decay_factor=FLAGS.learning_rate_decay_factor,
        training_number_of_steps=FLAGS.training_number_of_steps,
        slow_start_step=FLAGS.slow_start_step,
        slow_start_learning_rate=FLAGS.slow_start_learning_rate, momentum=FLAGS.momentum,
        fine_tune_batch_norm=FLAGS.fine_tune_batch_norm, sync_batch_norm=FLAGS.sync_batch_norm,
        top_k_percent_pixels=FLAGS.top_k_percent_pixels,
        hard_example_mining_step=FLAGS.hard_example_mining_step,
        tf_initial_checkpoint=FLAGS.tf_initial_checkpoint,
        initialize_last_layer=FLAGS.initialize_last_layer,
        last_layers_contain_logits_only=FLAGS.last_layers_contain_logits_only,
        gradient_accumulation_steps=FLAGS.gradient_accumulation_steps,
        mixed_precision=FLAGS.mixed_precision, jit_compile=FLAGS.jit_compile,
        save_interval_steps=FLAGS.save_interval_steps, log_steps=FLAGS.log_steps,
        seed=FLAGS.seed)


def dry_run(config):
    """What this command line would train, on one batch where the data is there."""
    import tensorflow as tf

    from deeplab_dpc import dry_run as dry
    from deeplab_dpc.data import datasets, synthetic
    from deeplab_dpc.train import deeplab

    dataset_dir = config.dataset_dir or synthetic.default_dataset_dir()
    has_data = os.path.isdir(dataset_dir)
    info = datasets.get_dataset_info(config.dataset, dataset_dir if has_data else None)
    cli.check_preset_classes(FLAGS, info)
    config = dataclasses.replace(config, dataset_dir=dataset_dir)
    batch = None
    if has_data and tf.io.gfile.glob(os.path.join(dataset_dir, f"{config.train_split}-*")):
        batch = dry.batch_facts(deeplab.default_dataset_fn(config, info)(
            tf.distribute.InputContext()))
    model = deeplab.build_model(config, info.num_classes, None)
    notes = [] if has_data else [f"the synthetic set would be generated in {dataset_dir}"
                                 if config.dataset == "synthetic" else
                                 f"--dataset_dir {dataset_dir} does not exist"]
    start = config.tf_initial_checkpoint
    if start and "://" not in start and not any(
            os.path.exists(p) for p in (start, start + ".index", start + ".keras")):
        notes.append(f"--tf_initial_checkpoint {start} does not exist")
    return dry.show("deeplab_dpc.train", dict(config.to_dict(), dataset=info.name),
                    dry.model_facts(model, config.train_crop_size), batch,
                    data=dataset_dir, notes=notes)


def main(argv):
    del argv
    config = make_config(FLAGS.dataset_dir)  # every flag checked before TensorFlow loads
    _check_dataset_dir()
    import_tensorflow()  # after the flag checks; its start-up log filtered
    if FLAGS.dry_run:
        return dry_run(config)
    from deeplab_dpc.train import deeplab, distribute

    # MultiWorkerMirroredStrategy must exist before TensorFlow runs anything.
    strategy = distribute.make_strategy(FLAGS.distribution_strategy, FLAGS.num_gpus, FLAGS.tpu)
    if not config.dataset_dir:
        from deeplab_dpc.data import synthetic

        config = dataclasses.replace(
            config, dataset_dir=synthetic.ensure_dataset(synthetic.default_dataset_dir()))
    from deeplab_dpc.data import datasets

    cli.check_preset_classes(FLAGS, datasets.get_dataset_info(config.dataset, config.dataset_dir))
    deeplab.train_deeplab(config, strategy)


if __name__ == "__main__":
    cli.run(main, flag_names={"backbone": "model_variant"})
