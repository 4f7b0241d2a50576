"""Every binary against bad input: exit code 2, stderr is one `error:` line naming the
file, flag or field (no traceback, no TensorFlow start-up log), and the output
location holds exactly what it held before.

Tests run as root, so "not writable" is a path under a regular file, never chmod.
"""
import json
import os

import numpy as np
import pytest
from PIL import Image

from deeplab_dpc.data import datasets
from tests import records, run_fixtures
from tests.cli_utils import assert_one_line_error, run_binary
from tests.train import toy_data

CELL = [{"kernel": 1, "rate": [1, 1], "op": "conv", "input": -1}]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Every input the cases below need, made once."""
    root = tmp_path_factory.mktemp("bad_input")
    w = {"root": root, "file": root / "a_file"}
    w["file"].write_text("not a folder")
    w["toy"] = toy_data.write_toy_dataset(root / "toy")
    truncated = toy_data.write_toy_dataset(root / "truncated")
    shard = os.path.join(truncated, "train-00001-of-00002.tfrecord")
    with open(shard, "rb+") as f:
        f.truncate(os.path.getsize(shard) - 100)
    w["truncated"], w["truncated_shard"] = truncated, shard
    corrupt = toy_data.write_toy_dataset(root / "corrupt")  # records whose image is junk
    example = records.encode(np.zeros((48, 48, 3), np.uint8), np.zeros((48, 48), np.uint8), "x")
    example.features.feature["image/encoded"].bytes_list.value[0] = b"\x89PNG junk"
    w["corrupt"] = corrupt
    w["corrupt_shard"] = os.path.join(corrupt, "train-00000-of-00002.tfrecord")
    import tensorflow as tf

    for shard in range(2):  # both shards: the very first batch fails
        path = os.path.join(corrupt, f"train-0000{shard}-of-00002.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            writer.write(example.SerializeToString())
    for name in ("images", "labels", "empty"):
        (root / name).mkdir()
        w[name] = root / name
    image = np.zeros((8, 8, 3), np.uint8)
    Image.fromarray(image).save(root / "images" / "a.png")
    Image.fromarray(image[..., 0]).save(root / "labels" / "a.png")
    (root / "notes.txt").write_text("not an image")
    (root / "wide_cell.json").write_text(json.dumps(CELL * 17))
    (root / "deep.json").write_text("[" * 100000 + "]" * 100000)
    model = run_fixtures.calibrated_tiny_model(3)
    info = datasets.DatasetInfo("toy", 3)
    for name, edit in (("run", None),
                       ("run_three", lambda c: c["model"].update(num_classes="three")),
                       ("run_bad_cell", lambda c: c["model"].update(cell=[{"op": "pool"}])),
                       ("run_unknown", lambda c: c["model"].update(num_clases=3))):
        run_fixtures.save_run(root / name, model, info,
                              train_settings={"dataset": "toy", "dataset_dir": w["toy"]})
        if edit:
            path = root / name / "model_config.json"
            config = json.loads(path.read_text())
            edit(config)
            path.write_text(json.dumps(config))
    from deeplab_dpc.search.study import Study
    from tests.search import caches

    w["cache"] = caches.write_context_cache(str(root / "context"), num_train=2, num_minival=2)
    import shutil

    w["truncated_cache"] = root / "truncated_cache"
    shutil.copytree(w["cache"], w["truncated_cache"])
    shard = w["truncated_cache"] / "train-00000-of-00001.tfrecord"
    with open(shard, "rb+") as f:
        f.truncate(os.path.getsize(shard) - 50)
    w["garbage_study"] = root / "garbage.sqlite"
    w["garbage_study"].write_bytes(b"not SQLite " * 200)
    from tests.import_tf1_checkpoint import tf1_reference

    w["tf1"] = tf1_reference.write_tf1_checkpoint(root / "tf1" / "model.ckpt", tf1_reference.
                                                  random_values(tf1_reference.model_listing(
                                                      num_classes=3, **records.TINY_MODEL)))
    w["other_study"] = root / "other.sqlite"
    other = Study(w["other_study"], create=True)
    other.bind({"cache_content_hash": "another cache", "proxy": {}, "sampler": {}})
    other.close()
    return w


def _snapshot(path):
    """What a location holds: None if nothing, else every path below it and its size."""
    if not os.path.lexists(path):
        return None
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sorted((os.path.relpath(os.path.join(d, n), path),
                   os.path.getsize(os.path.join(d, n)))
                  for d, _, names in os.walk(path) for n in names)


FOLDER = "tfrecords_tools.build_folder_data"
FOLDER_ARGS = ["--image_folder={images}", "--semantic_segmentation_folder={labels}",
               "--num_classes=3", "--dataset_name=x"]
TRAIN = ["deeplab_dpc.train", "--dataset=toy", "--dataset_dir={toy}", "--model_variant=mobilenet_v2",
         "--head=dpc", "--depth_multiplier=0.25", "--head_filters=16", "--train_crop_size=33,33",
         "--train_batch_size=2", "--training_number_of_steps=20", "--batch_norm_decay=0.9"]

IMPORT = "deeplab_dpc.import_tf1_checkpoint"
CACHE = "deeplab_dpc.cache_features"
SEARCH = "deeplab_dpc.search"

# (id, binary and arguments, the location that must not change, words the line must hold)
CASES = [
    ("converter_output_is_a_file", [FOLDER, *FOLDER_ARGS, "--output_dir={file}"], "{file}",
     ["--output_dir", "{file}", "is a file"]),
    ("converter_output_under_a_file", [FOLDER, *FOLDER_ARGS, "--output_dir={file}/out"],
     "{file}", ["--output_dir", "{file} is a file"]),
    ("converter_empty_image_folder",
     [FOLDER, "--image_folder={empty}", "--semantic_segmentation_folder={labels}",
      "--num_classes=3", "--dataset_name=x", "--output_dir={root}/out_empty"],
     "{root}/out_empty", ["{empty}", "--image_folder", "no images"]),
    ("label_map_nested_deep", [FOLDER, *FOLDER_ARGS, "--label_map={root}/deep.json",
                               "--output_dir={root}/out_map"], "{root}/out_map",
     ["{root}/deep.json", "nested"]),
    ("cityscapes_missing_root", ["tfrecords_tools.build_cityscapes_data",
                                 "--cityscapes_root={root}/nowhere", "--output_dir={root}/o1"],
     "{root}/o1", ["{root}/nowhere", "--cityscapes_root"]),
    ("voc_missing_images", ["tfrecords_tools.build_voc2012_data", "--image_folder={root}/nowhere",
                            "--semantic_segmentation_folder={labels}", "--list_folder={root}",
                            "--output_dir={root}/o2"], "{root}/o2",
     ["{root}/nowhere", "--image_folder"]),
    ("person_part_missing_labels",
     ["tfrecords_tools.build_person_part_data", "--image_folder={images}",
      "--semantic_segmentation_folder={root}/nowhere", "--list_folder={root}",
      "--output_dir={root}/o3"], "{root}/o3",
     ["{root}/nowhere", "--semantic_segmentation_folder"]),
    ("ade20k_missing_root", ["tfrecords_tools.build_ade20k_data",
                             "--ade20k_root={root}/nowhere", "--output_dir={root}/o4"],
     "{root}/o4", ["{root}/nowhere", "--ade20k_root"]),
    ("synthetic_output_under_a_file",
     ["tfrecords_tools.build_synthetic_data", "--output_dir={file}/syn"], "{file}",
     ["--output_dir"]),
    ("train_logdir_under_a_file", [*TRAIN, "--train_logdir={file}/run"], "{file}",
     ["--train_logdir", "{file} is a file"]),
    ("train_cell_too_wide", [*TRAIN, "--train_logdir={root}/run_wide",
                             "--dense_prediction_cell_json={root}/wide_cell.json"],
     "{root}/run_wide", ["{root}/wide_cell.json", "at most 16 branches"]),
    ("train_cell_nested_deep", [*TRAIN, "--train_logdir={root}/run_deep",
                                "--dense_prediction_cell_json={root}/deep.json"],
     "{root}/run_deep", ["{root}/deep.json", "nested"]),
    ("train_crop_too_small", [*TRAIN, "--train_logdir={root}/run_crop",
                              "--train_crop_size=1,1"], "{root}/run_crop",
     ["--train_crop_size", "2x2"]),
    ("train_scale_factors", [*TRAIN, "--train_logdir={root}/run_scale", "--min_scale_factor=2",
                             "--max_scale_factor=1"], "{root}/run_scale",
     ["--min_scale_factor", "--max_scale_factor"]),
    ("train_truncated_shard", [*TRAIN, "--dataset_dir={truncated}",
                               "--train_logdir={root}/run_truncated"], "{root}/run_truncated",
     ["{truncated_shard}", "record", "rerun its converter"]),
    ("train_corrupt_image", [*TRAIN, "--dataset_dir={corrupt}",
                             "--train_logdir={root}/run_corrupt"], "{root}/run_corrupt",
     ["{corrupt_shard}", "record 0", "image"]),
    ("eval_logdir_is_a_file", ["deeplab_dpc.eval", "--checkpoint_dir={root}/run",
                               "--eval_logdir={file}"], "{file}", ["--eval_logdir"]),
    ("eval_config_field_type", ["deeplab_dpc.eval", "--checkpoint_dir={root}/run_three",
                                "--eval_logdir={root}/eval_three"], "{root}/eval_three",
     ["{root}/run_three/model_config.json", "model.num_classes", "three"]),
    ("export_config_bad_cell", ["deeplab_dpc.export", "--checkpoint_path={root}/run_bad_cell",
                                "--export_path={root}/export_bad"], "{root}/export_bad",
     ["{root}/run_bad_cell/model_config.json", "model.cell"]),
    ("export_path_under_a_file", ["deeplab_dpc.export", "--checkpoint_path={root}/run",
                                  "--export_path={file}/exported"], "{file}",
     ["--export_path"]),
    ("predict_config_unknown_key",
     ["deeplab_dpc.predict", "--checkpoint_dir={root}/run_unknown",
      "--image_glob={images}/*.png", "--output_dir={root}/pred_unknown"],
     "{root}/pred_unknown", ["{root}/run_unknown/model_config.json", "num_clases"]),
    ("predict_output_under_a_file",
     ["deeplab_dpc.predict", "--checkpoint_dir={root}/run", "--image_glob={images}/*.png",
      "--output_dir={file}/out"], "{file}", ["--output_dir"]),
    ("predict_not_an_image",
     ["deeplab_dpc.predict", "--checkpoint_dir={root}/run", "--image_glob={root}/notes.txt",
      "--output_dir={root}/pred_text"], "{root}/pred_text",
     ["{root}/notes.txt", "cannot read the image"]),
    ("vis_logdir_under_a_file", ["deeplab_dpc.vis", "--checkpoint_dir={root}/run",
                                 "--vis_logdir={file}/vis"], "{file}", ["--vis_logdir"]),
    ("stats_cell_too_wide", ["deeplab_dpc.stats",
                             "--dense_prediction_cell_json={root}/wide_cell.json"],
     "{root}/wide_cell.json", ["{root}/wide_cell.json", "at most 16"]),
    ("stray_argument", ["deeplab_dpc.eval", "stray"], "{root}/run", ["unexpected arguments"]),
    ("import_output_under_a_file", [IMPORT, "--tf1_checkpoint={root}/run",
                                    "--output_dir={file}/imported"], "{file}",
     ["--output_dir", "{file} is a file"]),
    ("import_missing_checkpoint", [IMPORT, "--tf1_checkpoint={root}/nowhere",
                                   "--output_dir={root}/imp_a"], "{root}/imp_a",
     ["--tf1_checkpoint", "{root}/nowhere", "does not exist"]),
    ("import_output_not_empty", [IMPORT, "--tf1_checkpoint={root}/run",
                                 "--output_dir={root}/run_three"], "{root}/run_three",
     ["--output_dir", "{root}/run_three", "already holds files"]),
    ("import_a_tf2_checkpoint", [IMPORT, "--tf1_checkpoint={root}/run",
                                 "--output_dir={root}/imp_b"], "{root}/imp_b",
     ["--tf1_checkpoint", "{root}/run/", "is a TF2 checkpoint"]),
    ("train_tf1_checkpoint_folder_empty", [*TRAIN, "--train_logdir={root}/run_tf1_empty",
                                           "--tf_initial_checkpoint={empty}"],
     "{root}/run_tf1_empty", ["--tf_initial_checkpoint", "{empty}", "no checkpoint"]),
    # The import report is written after the first step, so a run that fails before
    # leaves nothing behind.
    ("train_tf1_checkpoint_bad_data", [*TRAIN, "--dataset_dir={truncated}",
                                       "--tf_initial_checkpoint={tf1}",
                                       "--train_logdir={root}/run_tf1_data"],
     "{root}/run_tf1_data", ["{truncated_shard}", "record"]),
    ("cache_dir_missing", [CACHE, "--model_variant=mobilenet_v2"], "{root}/run",
     ["--feature_cache_dir", "required"]),
    ("cache_no_backbone", [CACHE, "--feature_cache_dir={root}/cache_a"], "{root}/cache_a",
     ["--checkpoint_dir", "--model_variant"]),
    ("cache_two_backbones", [CACHE, "--feature_cache_dir={root}/cache_b",
                             "--checkpoint_dir={root}/run", "--model_variant=mobilenet_v2"],
     "{root}/cache_b", ["--checkpoint_dir", "--model_variant"]),
    ("cache_missing_checkpoint", [CACHE, "--feature_cache_dir={root}/cache_c",
                                  "--checkpoint_dir={root}/nowhere"], "{root}/cache_c",
     ["--checkpoint_dir", "{root}/nowhere", "does not exist"]),
    ("cache_scale_zero", [CACHE, "--feature_cache_dir={root}/cache_d",
                          "--checkpoint_dir={root}/run", "--image_scale=0"], "{root}/cache_d",
     ["--image_scale", "> 0"]),
    ("cache_negative_holdout", [CACHE, "--feature_cache_dir={root}/cache_e",
                                "--checkpoint_dir={root}/run", "--holdout_from_train=-1"],
     "{root}/cache_e", ["--holdout_from_train", ">= 0"]),
    ("cache_dir_is_a_file", [CACHE, "--feature_cache_dir={file}", "--checkpoint_dir={root}/run"],
     "{file}", ["--feature_cache_dir", "{file}", "is a file"]),
    ("cache_holdout_too_large", [CACHE, "--feature_cache_dir={root}/cache_f",
                                 "--checkpoint_dir={root}/run", "--holdout_from_train=8"],
     "{root}/cache_f", ["--holdout_from_train", "8", "leaves no training image"]),
    ("search_study_malformed", [SEARCH, "--study={garbage_study}", "--feature_cache_dir={cache}"],
     "{garbage_study}", ["--study", "{garbage_study}", "not an SQLite file"]),
    ("search_study_other_settings", [SEARCH, "--study={other_study}",
                                     "--feature_cache_dir={cache}"], "{other_study}",
     ["--study", "other settings", "differs in cache_content_hash"]),
    ("search_not_a_cache", [SEARCH, "--study={root}/s1.sqlite", "--feature_cache_dir={empty}"],
     "{root}/s1.sqlite", ["--feature_cache_dir", "{empty}", "is not a feature cache"]),
    ("search_study_unwritable", [SEARCH, "--study={file}/s.sqlite", "--feature_cache_dir={cache}"],
     "{file}", ["--study", "{file}/s.sqlite", "cannot create its folder"]),
    ("search_report_no_study", [SEARCH, "--study={root}/none.sqlite", "--report"],
     "{root}/none.sqlite", ["--study", "does not exist"]),
    ("search_on_val", [SEARCH, "--study={root}/s2.sqlite", "--feature_cache_dir={cache}",
                       "--search_split=val"], "{root}/s2.sqlite", ["--search_split", "val"]),
    ("search_split_missing", [SEARCH, "--study={root}/s3.sqlite", "--feature_cache_dir={cache}",
                              "--search_split=test"], "{root}/s3.sqlite",
     ["--search_split", "'test'", "no such split"]),
    ("search_branches", [SEARCH, "--study={root}/s4.sqlite", "--feature_cache_dir={cache}",
                         "--num_branches=0"], "{root}/s4.sqlite", ["--num_branches", "0"]),
    ("search_truncated_cache", [SEARCH, "--study={root}/s5.sqlite",
                                "--feature_cache_dir={truncated_cache}", "--num_workers=2"],
     "{root}/s5.sqlite", ["{truncated_cache}/train-00000-of-00001.tfrecord", "bytes",
                          "rerun cache_features"]),
    ("search_export_no_dir", [SEARCH, "--study={other_study}", "--export_top=2"],
     "{other_study}", ["--output_dir", "required"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(world, case):
    _, command, watched, needles = case
    fill = {k: str(v) for k, v in world.items()}
    command = [part.format(**fill) for part in command]
    watched = watched.format(**fill)
    before = _snapshot(watched)
    result = run_binary(command[0], *command[1:], timeout=300)
    assert_one_line_error(result, *(n.format(**fill) for n in needles))
    assert _snapshot(watched) == before
