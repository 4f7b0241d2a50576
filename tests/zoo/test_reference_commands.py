"""The reference DeepLab's documented command lines, with only the module name
changed, dry-run to the network the reference builds from them: an ASPP line builds
ASPP (no cell JSON means ASPP), a DPC line the cell, and where a variable listing of
the original TF1 graph exists, the weights match it name for name through the TF1
import's name table."""
import collections
import json
import os
import shutil

from tests.zoo import harness, reference_commands as ref

LISTINGS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures",
                        "tf1_variables")
CELL_FILE = "dense_prediction_cell_branch5_top1_cityscapes.json"


def _substitutions(tmp_path):
    paths = {var: str(tmp_path / "absent" / var.lower()) for var in (
        "INIT_FOLDER", "TRAIN_LOGDIR", "EVAL_LOGDIR", "VIS_LOGDIR", "CKPT_PATH", "EXPORT_PATH",
        "PASCAL_DATASET", "PATH_TO_INITIAL_CHECKPOINT", "PATH_TO_TRAIN_DIR",
        "PATH_TO_DATASET", "PATH_TO_CHECKPOINT", "PATH_TO_EVAL_DIR", "PATH_TO_VIS_DIR")}
    return dict(paths, WORK_DIR="deeplab", NUM_ITERATIONS="10", CKPT_NAME="ckpt")


def _mapped(config):
    from deeplab_dpc.import_tf1_checkpoint import names
    from deeplab_dpc.model import DeepLab

    model = DeepLab.from_config(config)
    return sorted((names.tf1_name(w.path, model.backbone_name), tuple(w.shape))
                  for w in model.weights)


def test_reference_command_lines_build_the_reference_networks(tmp_path):
    work = harness.workdir(tmp_path)
    os.makedirs(work / "deeplab" / "core")  # where the reference's DPC lines find the cell
    shutil.copy(os.path.join(harness.CELLS, CELL_FILE), work / "deeplab" / "core")
    by_module = collections.defaultdict(list)
    for name in ref.COMMANDS:
        module, args = ref.argv(name, _substitutions(tmp_path))
        by_module[module].append((name, args))
    # The reference's own rule around a cell, on the train line of the DPC checkpoint.
    cell = f"--dense_prediction_cell_json=deeplab/core/{CELL_FILE}"
    rule_lines = [("rates beside a cell", [cell, "--atrous_rates=6", "--train_logdir=x"]),
                  ("rates beside --head=dpc", ["--head=dpc", "--atrous_rates=6",
                                                "--train_logdir=x"])]
    by_module["deeplab_dpc.train"] += rule_lines
    before = harness.listing(work)
    answers = {}
    for module, lines in by_module.items():
        for (name, _), answer in zip(lines, harness.dry_runs(
                module, [args for _, args in lines], work, tmp_path)):
            answers[name] = answer
    assert harness.listing(work) == before
    assert not (tmp_path / "absent").exists(), "a dry run created an output path"
    for name, (_, expected) in ref.COMMANDS.items():
        answer = answers[name]
        assert answer["error"] is None, (name, answer["error"])
        config = answer["report"]["model"]["config"]
        assert {k: config[k] for k in expected} == expected, name
        if name in ref.LISTINGS:
            with open(os.path.join(LISTINGS, ref.LISTINGS[name])) as f:
                listing = sorted((n, tuple(shape)) for n, shape in json.load(f))
            assert _mapped(config) == listing, name
    assert answers["ade20k_train"]["report"]["settings"]["min_resize_value"] == 513
    assert answers["ade20k_train"]["report"]["settings"]["resize_factor"] == 16
    assert any("vis_crop_size" in n for n in answers["cityscapes_vis"]["notes"])
    assert answers["local_test_export"]["report"]["model"]["image_size"] == [513, 513]
    # Rates beside a cell: ignored with a note, as the reference ignores them ...
    answer = answers["rates beside a cell"]
    assert answer["error"] is None and answer["report"]["model"]["config"]["head"] == "dpc"
    assert any("--atrous_rates ignored" in n for n in answer["notes"]), answer["notes"]
    # ... and refused beside an explicit --head=dpc.
    assert "--atrous_rates" in answers["rates beside --head=dpc"]["error"]
