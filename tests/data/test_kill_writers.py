"""Writers SIGKILLed mid-write (the `DEEPLAB_DPC_KILL_AFTER` hook picks the moment):
readers see only complete shards, and rerunning the writer completes the folder."""
import filecmp
import os

import pytest
import tensorflow as tf

from deeplab_dpc import files
from deeplab_dpc.data import input_pipeline as ip
from deeplab_dpc.errors import InputError
from tests.cli_utils import run_binary
from tests.data import convert_fakes as fakes


def _run(module, args, kill_after=None):
    env = dict(os.environ)
    if kill_after:
        env["DEEPLAB_DPC_KILL_AFTER"] = kill_after
    result = run_binary(module, *args, timeout=300, env=env)
    if kill_after:
        assert result.returncode == -9, (result.returncode, result.stderr[-2000:])
    else:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


def _complete_shards(folder, split):
    """The shards a reader finds for `split`, each read to its end (no DataLossError)."""
    paths = ip.list_files(os.path.join(folder, f"{split}-*"))
    for path in paths:
        sum(1 for _ in tf.data.TFRecordDataset(path))
    return paths


def _temporaries(folder):
    return [n for _, _, names in os.walk(folder) for n in names if files.is_temporary(n)]


def _examples(path):
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def _same_folders(a, b, names):
    """Same files; shards compared record by record (a serialized Example's feature map
    has no fixed order across processes, so their bytes may differ)."""
    for name in names:
        first, second = os.path.join(a, name), os.path.join(b, name)
        if name.endswith(".tfrecord"):
            assert _examples(first) == _examples(second), name
        else:
            assert filecmp.cmp(first, second, shallow=False), name


FOLDER = "tfrecords_tools.build_folder_data"


@pytest.fixture(scope="module")
def folder_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill_converter")
    fakes.folder(str(root), count=12)
    args = [f"--image_folder={root / 'images'}", f"--semantic_segmentation_folder={root / 'labels'}",
            "--num_classes=256", "--dataset_name=raw", "--num_shards=4", "--num_workers=2"]
    whole = root / "whole"
    _run(FOLDER, [*args, f"--output_dir={whole}"])
    return root, args, whole


@pytest.mark.parametrize("moment", ["writing:1", "writing:6", "writing:11"])
def test_a_killed_converter_leaves_a_fresh_folder_unreadable_then_completes(
        folder_inputs, moment, tmp_path):
    _, args, whole = folder_inputs
    out = tmp_path / "out"
    _run(FOLDER, [*args, f"--output_dir={out}"], kill_after=moment)
    assert _temporaries(out)  # killed inside the writing
    with pytest.raises(InputError, match="no files match"):
        _complete_shards(out, "train")  # nothing partial is visible
    _run(FOLDER, [*args, f"--output_dir={out}"])
    assert not _temporaries(out)
    assert sorted(os.listdir(out)) == sorted(os.listdir(whole))
    _same_folders(out, whole, os.listdir(whole))
    assert len(_complete_shards(out, "train")) == 4


def test_a_killed_rerun_keeps_the_previous_complete_shards(folder_inputs, tmp_path):
    _, args, whole = folder_inputs
    out = tmp_path / "out"
    _run(FOLDER, [*args, f"--output_dir={out}"])
    _run(FOLDER, [*args, f"--output_dir={out}"], kill_after="writing:7")
    assert _temporaries(out)
    assert len(_complete_shards(out, "train")) == 4  # the earlier run's, all whole
    _run(FOLDER, [*args, f"--output_dir={out}"])
    assert not _temporaries(out)
    _same_folders(out, whole, os.listdir(whole))


SYNTHETIC = "tfrecords_tools.build_synthetic_data"
SYNTHETIC_ARGS = ["--image_size=65,129", "--splits=train=8,val=2", "--num_shards=2",
                  "--num_workers=2"]


@pytest.mark.slow
def test_the_synthetic_writer_killed_twice_then_rerun_equals_one_run(tmp_path):
    whole, out = tmp_path / "whole", tmp_path / "out"
    _run(SYNTHETIC, [*SYNTHETIC_ARGS, f"--output_dir={whole}"])
    _run(SYNTHETIC, [*SYNTHETIC_ARGS, f"--output_dir={out}"], kill_after="synthetic scenes:4")
    with pytest.raises(InputError, match="no files match"):
        _complete_shards(out, "train")
    _run(SYNTHETIC, [*SYNTHETIC_ARGS, f"--output_dir={out}"], kill_after="writing:5")
    assert _temporaries(out)
    with pytest.raises(InputError, match="no files match"):
        _complete_shards(out, "train")
    _run(SYNTHETIC, [*SYNTHETIC_ARGS, f"--output_dir={out}"])
    assert not _temporaries(out)
    shards = [n for n in os.listdir(whole) if n.endswith(".tfrecord")]
    assert len(shards) == 4
    _same_folders(out, whole, shards + ["dataset_info.json", "synthetic_config.json"])
    assert len(_complete_shards(out, "train")) == 2
