"""Glue for the absl `python -m` entry points: one-line errors, flag-value checks.

No TensorFlow import: a bad flag is answered in a second, before the slow import.
"""
import json
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from deeplab_dpc.common import CHECKPOINT_NAME  # noqa: E402
from deeplab_dpc.errors import InputError  # noqa: E402

flags.DEFINE_bool("dry_run", False, "Resolve the flags, build the model (and one input batch "
                  "when the data is there), print the settings with the model's parameters "
                  "and multiply-adds; train and write nothing.")
# Reference flags accepted for its command lines' sake: name -> what replaces it here.
_ACCEPTED = {}
_DEFINERS = {"string": flags.DEFINE_string, "integer": flags.DEFINE_integer,
             "bool": flags.DEFINE_bool, "list": flags.DEFINE_list, "float": flags.DEFINE_float}
# The reference's `--dataset` default, taken when --dataset_dir names data but no dataset.
REFERENCE_DATASET = "pascal_voc_seg"


def _parse_flags(argv):
    """absl's parser, but a bad flag (an unknown one in a flagfile, a bad value) is
    one `error:` line like every other bad input, not absl's two-line usage note."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        print(f"error: {str(e).removeprefix('ERROR:: ')}", file=sys.stderr)
        sys.exit(2)


def run(main, flag_names=None):
    """`absl.app.run(main)`, reporting flag errors and `InputError` as one
    `error: ...` line with exit code 2. The library's parameter names in an
    InputError are shown as flags (`flag_names`: parameter -> flag where they differ)."""

    def _main(argv):
        if len(argv) > 1:
            print(f"error: unexpected arguments (flags start with --): {' '.join(argv[1:])}",
                  file=sys.stderr)
            sys.exit(2)
        for line in accepted_notes(flags.FLAGS):
            note(line)
        if not flags.FLAGS["verbosity"].present:
            # absl.app raises logging to INFO, which lets TensorFlow's checkpoint
            # saver log a line per save; our binaries print their own progress.
            logging.set_verbosity(logging.WARNING)
        try:
            main(argv)  # its answer (a dry run's report) is for in-process callers
            return None
        except InputError as e:
            print(f"error: {e.as_flags(flag_names)}", file=sys.stderr)
            sys.exit(2)

    # --help lists the main module's flags: those defined here are the binary's too.
    for flag in flags.FLAGS.get_key_flags_for_module(__name__):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(_main, flags_parser=_parse_flags)


def define_accepted(name, default, kind, replacement):
    """A reference flag that changes nothing here: parsed, and answered with a note
    saying what replaces it when given."""
    _DEFINERS[kind](name, default, f"Reference flag, accepted; {replacement}")
    _ACCEPTED[name] = replacement


def accepted_notes(flag_values):
    return [f"--{name} changes nothing here; {text}" for name, text in _ACCEPTED.items()
            if name in flag_values and flag_values[name].present]


def default_dataset(flag_values):
    """--dataset, else the synthetic set without --dataset_dir (nothing to download),
    else the reference's default (a dataset_info.json in --dataset_dir still wins)."""
    given = {name: flag_values[name].value if name in flag_values else None
             for name in ("dataset", "dataset_dir")}
    if given["dataset"]:
        return given["dataset"]
    return REFERENCE_DATASET if given["dataset_dir"] else "synthetic"


def require(flag_values, *names):
    """InputError naming the first of `names` that is unset."""
    for name in names:
        if not getattr(flag_values, name):
            raise InputError(f"--{name} is required")


def parse_ints(values, flag, length=None, minimum=None, expected="integers"):
    """A list flag's values as a tuple of ints (the one integer-list parser of the
    binaries); InputError naming the flag if one is not an integer, the count is not
    `length` or a value is below `minimum`."""
    try:
        ints = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        ints = None
    if ints is None or (length is not None and len(ints) != length) or (
            minimum is not None and ints and min(ints) < minimum):
        raise InputError(f"--{flag}: expected {expected}, got {','.join(map(str, values))}")
    return ints


def parse_size(values, flag):
    """`height,width` flag values -> (h, w), or None when unset. Also the
    reference's repeated form (`--crop_size=513 --crop_size=513`)."""
    if not values:
        return None
    if isinstance(values, str):
        values = [values]
    values = [v for value in values for v in str(value).split(",") if v.strip()]
    if len(values) == 1 and values[0].strip().isdigit():  # the reference's repeated form,
        raise InputError(f"--{flag}: expected height,width, got {values[0]} (write "
                         f"--{flag}={values[0]},{values[0]} for a square)")
    return parse_ints(values, flag, length=2, minimum=1, expected="height,width")


def existing_path(path, flag):
    """`path` if it is a directory or a checkpoint prefix; InputError at once otherwise
    (cloud paths are left to the reader)."""
    if "://" not in path and not os.path.exists(path) and not os.path.exists(path + ".index"):
        from deeplab_dpc import files

        raise InputError(f"--{flag} {path} does not exist{files.checkpoints_note(path)}")
    return path


def reference_checkpoint(path, flag):
    """`path`, except that the reference's prefix `model.ckpt-N` is read as this
    package's `ckpt-N` (with a note) when only that exists: the reference's export
    command line names its checkpoints so."""
    found = re.fullmatch(r"model\.ckpt-(\d+)", os.path.basename(path or ""))
    if not found or "://" in path or os.path.exists(path + ".index"):
        return path
    ours = os.path.join(os.path.dirname(path), f"{CHECKPOINT_NAME}-{found.group(1)}")
    if not os.path.exists(ours + ".index"):
        return path
    note(f"--{flag} {path} read as {ours} (this package's checkpoints are "
         f"{CHECKPOINT_NAME}-N)")
    return ours


def define_resize_flags():
    """The reference's resize of each image to a range before augmentation (its
    ADE20K recipe)."""
    flags.DEFINE_integer("min_resize_value", None, "Resize so the short side is this "
                         "(see --max_resize_value); unset: no resize.")
    flags.DEFINE_integer("max_resize_value", None, "... unless the long side would exceed "
                         "this, which then wins.")
    flags.DEFINE_integer("resize_factor", None, "Then round each side to a multiple of "
                         "this plus one.")


def resize_options(flag_values):
    return {name: flag_values[name].value
            for name in ("min_resize_value", "max_resize_value", "resize_factor")}


_NOTED = set()


def note(message):
    """One `note:` line on stderr (once per process): a flag accepted that changes
    nothing here."""
    if message not in _NOTED:
        _NOTED.add(message)
        print(f"note: {message}", file=sys.stderr, flush=True)


def define_model_flags():
    """The reference's model flags, with its defaults, for every binary that builds or
    reads a DeepLab model: one definition, so `--atrous_rates` means the same
    everywhere (unset = none: ASPP's 1x1 and image pooling only)."""
    flags.DEFINE_string("model_preset", None, "A named network (stats --list_presets); "
                        "model flags that contradict it are refused.")
    flags.DEFINE_string("model_variant", "mobilenet_v2",
                        "Backbone: mobilenet_v2, xception_41, xception_65 or xception_71.")
    flags.DEFINE_enum("head", None, ["dpc", "aspp"], "Unset: the reference's rule, the "
                      "cell of --dense_prediction_cell_json, else ASPP; dpc alone: the "
                      "published cell.")
    flags.DEFINE_string("dense_prediction_cell_json", None, "Cell JSON file (reference "
                        "format); it replaces ASPP.")
    flags.DEFINE_multi_integer("atrous_rates", None, "ASPP atrous rates, literal (repeat "
                               "the flag; 12/24/36 at output stride 8); unset = none.")
    flags.DEFINE_integer("output_stride", 16, "Backbone output stride: 8, 16 or 32.")
    flags.DEFINE_integer("decoder_output_stride", None, "4 to add the decoder.")
    flags.DEFINE_float("depth_multiplier", 1.0, "MobileNet-v2 depth multiplier.")
    flags.DEFINE_integer("divisible_by", None, "MobileNet-v2 channel rounding; unset: 8 at "
                         "depth 1.0, else 1 (8 loads keras.applications' weights).")
    flags.DEFINE_multi_integer("multi_grid", None, "Xception exit-flow unit rates (repeat "
                               "three times, e.g. 1, 2, 4); unset = 1, 1, 1.")
    flags.DEFINE_bool("aspp_with_separable_conv", True, "ASPP atrous branches separable.")
    flags.DEFINE_bool("add_image_level_feature", True, "ASPP image pooling branch.")
    flags.DEFINE_list("image_pooling_crop_size", None, "Reference sliding-window pooling "
                      "for this crop (height,width); unset = grid pooling.")


def model_options(flag_values):
    """`DeepLab` arguments from the model flags (`define_model_flags`), by the
    reference's rule: the cell of --dense_prediction_cell_json when given, else ASPP
    (with --atrous_rates, none by default). Rates beside a cell are ignored with a
    note, as the reference ignores them, and refused beside an explicit --head=dpc."""
    from deeplab_dpc.spec import CellSpec, resolve_head

    head = flag_values.head
    rates = parse_ints(flag_values.atrous_rates or (), "atrous_rates", minimum=1,
                       expected="positive integers")
    cell = None
    if flag_values.dense_prediction_cell_json:
        if head == "aspp":
            raise InputError("--dense_prediction_cell_json needs --head=dpc (or no --head)")
        cell = CellSpec.from_file(flag_values.dense_prediction_cell_json)
    if rates and head == "dpc":
        raise InputError("--atrous_rates is ASPP's and has no effect with --head=dpc; "
                         "drop one of them")
    if rates and cell is not None:
        note("--atrous_rates ignored: the cell of --dense_prediction_cell_json replaces "
             "ASPP (as in the reference)")
        rates = ()
    multi_grid = None
    if flag_values.multi_grid:
        multi_grid = parse_ints(flag_values.multi_grid, "multi_grid", length=3, minimum=1,
                                expected="three positive integers (repeat the flag)")
    if flag_values.divisible_by is not None and flag_values.divisible_by < 1:
        raise InputError(f"--divisible_by must be >= 1, got {flag_values.divisible_by}")
    options = dict(
        backbone=flag_values.model_variant, head=resolve_head(head, cell),
        cell=cell, atrous_rates=rates,
        aspp_with_separable_conv=flag_values.aspp_with_separable_conv,
        add_image_level_feature=flag_values.add_image_level_feature,
        image_pooling_crop_size=parse_size(flag_values.image_pooling_crop_size,
                                           "image_pooling_crop_size"),
        output_stride=flag_values.output_stride,
        decoder_output_stride=flag_values.decoder_output_stride,
        depth_multiplier=flag_values.depth_multiplier,
        divisible_by=flag_values.divisible_by, multi_grid=multi_grid)
    if flag_values.model_preset:
        options = _with_preset(flag_values, options)
    return options


def _with_preset(flag_values, options):
    """`options` with the preset's network; a model flag given that contradicts it is
    refused, naming both flags."""
    from deeplab_dpc import presets

    given = {flag: options[field] for flag, field in _RUN_FIELDS.items()
             if flag_values[flag].present}
    if "head_filters" in flag_values and flag_values["head_filters"].present:
        given["head_filters"] = flag_values.head_filters
    check_against_preset(flag_values, given)
    preset = presets.get_preset(flag_values.model_preset).model
    return dict(options, **{k: v for k, v in preset.items()
                            if k not in ("num_classes", "head_filters")})


def check_against_preset(flag_values, given):
    """InputError naming the first flag of `given` ({flag: value, as a model
    argument}) that contradicts --model_preset."""
    from deeplab_dpc import presets

    name = flag_values.model_preset
    field_of = dict(_RUN_FIELDS, head_filters="head_filters")
    field = presets.contradiction(name, {field_of[flag]: v for flag, v in given.items()})
    if field is None:
        return
    flag = next(flag for flag in given if field_of[flag] == field)
    value = presets.get_preset(name).model[field]
    shown = "its cell" if field == "cell" else json.dumps(presets.normalized(field, value))
    raise InputError(f"--{flag} contradicts --model_preset={name}, which sets "
                     f"{field} = {shown}; drop one of them")


def preset_num_classes(flag_values):
    """The class count of --model_preset, or None."""
    if "model_preset" not in flag_values or not flag_values.model_preset:
        return None
    from deeplab_dpc import presets

    return presets.get_preset(flag_values.model_preset).model["num_classes"]


# Model flag -> DeepLab config field, for checking a command line against a run.
_RUN_FIELDS = {"model_variant": "backbone", "head": "head",
               "dense_prediction_cell_json": "cell", "atrous_rates": "atrous_rates",
               "output_stride": "output_stride",
               "decoder_output_stride": "decoder_output_stride",
               "depth_multiplier": "depth_multiplier", "divisible_by": "divisible_by",
               "multi_grid": "multi_grid",
               "aspp_with_separable_conv": "aspp_with_separable_conv",
               "add_image_level_feature": "add_image_level_feature",
               "image_pooling_crop_size": "image_pooling_crop_size"}
_ASPP_ONLY = ("atrous_rates", "aspp_with_separable_conv", "add_image_level_feature")


def check_model_flags(flag_values, run_model, run_path, options=None):
    """For eval, vis and export, whose network is the run's (its config holds the
    cell): model flags given on the command line, as the reference's command lines
    give them, must describe that network. One that differs is refused in one line;
    ASPP's flags beside a DPC run are ignored with a note. `options`: the flags'
    `model_options`, when the caller has them already."""
    from deeplab_dpc import presets

    given = [name for name in _RUN_FIELDS if name in flag_values and flag_values[name].present]
    explicit = set(given)
    if "model_preset" in flag_values and flag_values.model_preset:
        preset = presets.get_preset(flag_values.model_preset).model
        given += [flag for flag, field in _RUN_FIELDS.items()
                  if field in preset and flag not in given]
        if preset["num_classes"] != run_model.get("num_classes"):
            raise InputError(f"--model_preset={flag_values.model_preset} predicts "
                             f"{preset['num_classes']} classes but {run_path} predicts "
                             f"{run_model.get('num_classes')}")
    if not given:
        return
    ours = {field: presets.normalized(field, value)
            for field, value in (options or model_options(flag_values)).items()}
    for name in given:
        field = _RUN_FIELDS[name]
        theirs = run_model.get(field)
        if name in _ASPP_ONLY and run_model.get("head") == "dpc":
            if name in explicit:
                note(f"--{name} ignored: {run_path} holds a DPC, whose cell it keeps")
            continue
        if ours[field] != theirs and not (field == "head" and flag_values.head is None):
            if field == "output_stride":
                raise InputError(f"--output_stride={ours[field]}: {run_path} was trained at "
                                 f"{theirs}; evaluating at another output stride is not "
                                 "supported yet")
            shown = "its cell" if field == "cell" else json.dumps(theirs)
            what = f"--{name}" if name in explicit else f"--model_preset={flag_values.model_preset}"
            raise InputError(f"{what} does not match {run_path}, which has "
                             f"{field} = {shown}; its network is the run's (drop the flag)")


def run_model_config(flag_values, checkpoint, options=None):
    """The model config of the run at `checkpoint` (a run directory or a prefix in
    one), with the command line's model flags checked against it; None when there
    is no run there yet (a dry run before training)."""
    from deeplab_dpc import run_dir

    folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
    if "://" not in checkpoint and not os.path.exists(os.path.join(folder, run_dir.CONFIG_FILE)):
        return None
    config = run_dir.read_deeplab_config(checkpoint)
    check_model_flags(flag_values, config["model"], folder, options)
    return config


def reader_dry_run(binary, flag_values, checkpoint, config, settings, split=None,
                   image_size=None, num_classes=None, resize=None, options=None):
    """The dry run of eval, vis, export and predict: the network of `config` (the
    run's, from `run_model_config`), or before the run exists the one the model flags
    describe (`options`); one batch of `split` where the data is there, parameters
    and multiply-adds at `image_size`."""
    import tensorflow as tf

    from deeplab_dpc import dry_run
    from deeplab_dpc.data import datasets, synthetic  # noqa: F401 (registers "synthetic")
    from deeplab_dpc.eval import evaluator
    from deeplab_dpc.model import DeepLab

    notes = []
    train = (config or {}).get("train", {})
    dataset_dir = flag_values["dataset_dir"].value if "dataset_dir" in flag_values else None
    dataset_dir = dataset_dir or train.get("dataset_dir")
    dataset = (flag_values["dataset"].value if "dataset" in flag_values else None) or train.get(
        "dataset") or (config["dataset"]["name"] if config else default_dataset(flag_values))
    has_data = bool(dataset_dir) and tf.io.gfile.isdir(dataset_dir)
    info = datasets.get_dataset_info(dataset, dataset_dir if has_data else None)
    if config is None and "model_variant" not in flag_values:
        raise InputError(f"{checkpoint}: no training run there")
    if config is None:
        notes.append(f"no run at {checkpoint} yet: the model is the one the flags describe")
        model = DeepLab(num_classes or info.num_classes,
                        **(options or model_options(flag_values)))
    else:
        model = DeepLab.from_config(config["model"])
    batch = None
    if split and has_data and tf.io.gfile.glob(os.path.join(dataset_dir, f"{split}-*")):
        resize = evaluator.run_resize(config or {}, **(resize or {}))
        batch = dry_run.batch_facts(evaluator.split_dataset(
            dataset_dir, split, info, image_size, resize=resize))
        image_size = image_size or tuple(batch["image"]["shape"][1:3])
    elif split:
        notes.append(f"no {split} data at {dataset_dir}" if dataset_dir else
                     "no --dataset_dir given or recorded in the run")
    return dry_run.show(binary, dict(settings, dataset=info.name, dataset_dir=dataset_dir),
                        dry_run.model_facts(model, image_size), batch,
                        data=dataset_dir, notes=notes)


def missing_notes(**paths):
    """Dry-run notes for the path flags (`flag=path`) whose path does not exist yet."""
    return [f"--{flag} {path} does not exist yet" for flag, path in paths.items()
            if path and not os.path.exists(path)]


def resolved_num_classes(flag_values):
    """--num_classes, else --model_preset's (None when neither says); the two
    disagreeing are refused."""
    preset = preset_num_classes(flag_values)
    given = flag_values.num_classes if flag_values["num_classes"].present else None
    if preset is not None and given is not None and given != preset:
        raise InputError(f"--num_classes={given} contradicts --model_preset="
                         f"{flag_values.model_preset}, which has {preset} classes")
    return preset if preset is not None else flag_values.num_classes


def check_preset_classes(flag_values, dataset_info):
    """Training takes its class count from the dataset: a preset made for another
    count is refused."""
    preset = preset_num_classes(flag_values)
    if preset is not None and preset != dataset_info.num_classes:
        raise InputError(f"--model_preset={flag_values.model_preset} predicts {preset} classes "
                         f"but dataset {dataset_info.name!r} has {dataset_info.num_classes}")
