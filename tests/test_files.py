"""The output rule (`files`): hidden temporaries, atomic replacement, stale cleanup,
output checks and bounded JSON."""
import glob
import os
import socket
import subprocess
import sys

import pytest

from deeplab_dpc import files
from deeplab_dpc.errors import InputError


def test_temporaries_are_hidden_from_readers_patterns(tmp_path):
    target = tmp_path / "train-00000-of-00002.tfrecord"
    temp = files.temp_path(target)
    assert os.path.dirname(temp) == str(tmp_path)
    assert os.path.basename(temp) == (f".train-00000-of-00002.tfrecord.tmp-"
                                      f"{socket.gethostname()}-{os.getpid()}")
    open(temp, "w").close()
    assert glob.glob(str(tmp_path / "train-*")) == [] and files.is_temporary(temp)
    assert not files.is_temporary(target)


def test_atomic_path_replaces_a_file_or_folder_only_on_success(tmp_path):
    path = tmp_path / "out.json"
    files.write_json_atomically(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with files.atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("killed")
    assert path.read_text() == '{\n  "a": 1\n}\n' and os.listdir(tmp_path) == ["out.json"]
    folder = tmp_path / "model"
    for content in ("old", "new"):
        with files.atomic_path(folder) as tmp:
            os.makedirs(tmp)
            (open(os.path.join(tmp, "f"), "w")).write(content)
    assert (folder / "f").read_text() == "new" and sorted(os.listdir(tmp_path)) == [
        "model", "out.json"]


def test_atomic_paths_commit_together(tmp_path):
    paths = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(OSError):
        with files.atomic_paths(paths) as temps:
            open(temps[0], "w").close()
            raise OSError("disk full")
    assert os.listdir(tmp_path) == []
    with files.atomic_paths(paths) as temps:
        for t in temps:
            open(t, "w").close()
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_stale_temporaries_of_dead_processes_go_live_ones_stay(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    host = socket.gethostname()
    names = {"dead": f".x.tfrecord.tmp-{host}-{dead}",
             "live": f".y.tfrecord.tmp-{host}-{os.getpid()}",
             "other_host": f".z.tfrecord.tmp-elsewhere-{dead}",
             "not_ours": f".w.json.tmp-{host}-{dead}", "plain": "x.tfrecord"}
    for name in names.values():
        open(tmp_path / name, "w").close()
    removed = files.remove_stale_temporaries(tmp_path, lambda t: t.endswith(".tfrecord"))
    assert removed == [names["dead"]]
    assert sorted(os.listdir(tmp_path)) == sorted(v for k, v in names.items() if k != "dead")


def test_output_checks_name_the_parameter(tmp_path):
    regular = tmp_path / "file"
    regular.write_text("x")
    for path, message in ((regular, "is a file, not a folder"),
                          (regular / "below", f"{regular} is a file, not a folder"),
                          ("", "out_dir is required")):
        with pytest.raises(InputError, match=message) as e:
            files.check_output_dir(str(path), "out_dir")
        assert e.value.as_flags().startswith("--out_dir") or "--out_dir" in e.value.as_flags()
    assert files.check_output_dir(str(tmp_path / "new" / "deeper"), "out_dir")
    assert os.listdir(tmp_path) == ["file"]  # checking creates nothing


def test_json_is_bounded_in_depth_and_size(tmp_path):
    assert files.parse_json('{"a": [[1, 2]]}', "x") == {"a": [[1, 2]]}
    for text, message in (("[" * 100000 + "]" * 100000, "nested more than 32"),
                          ("[" * 40 + "]" * 40, "nested more than 32"),
                          ("{", "not valid JSON"),
                          (" " * (files.MAX_JSON_BYTES + 1), "more than the")):
        with pytest.raises(InputError, match=message):
            files.parse_json(text, "cell.json")
    path = tmp_path / "big.json"
    path.write_text("[" + "1," * files.MAX_JSON_BYTES + "1]")
    with pytest.raises(InputError, match=f"{path}: larger than"):
        files.read_json(path)
    with pytest.raises(InputError, match="cannot read"):
        files.read_json(tmp_path / "missing.json")


def test_a_write_removes_its_targets_leftovers_from_killed_writers(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    leftover = tmp_path / f".metrics.json.tmp-{socket.gethostname()}-{dead}"
    other = tmp_path / f".other.json.tmp-{socket.gethostname()}-{dead}"
    leftover.write_text("half")
    other.write_text("half")
    files.write_json_atomically(tmp_path / "metrics.json", {})
    assert sorted(os.listdir(tmp_path)) == sorted(["metrics.json", other.name])
