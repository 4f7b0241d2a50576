"""Runs `tests.zoo.dry_runs` for one binary in a scratch working directory."""
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CELLS = os.path.join(ROOT, "deeplab_dpc", "cells")


def workdir(tmp_path):
    """A working directory holding only `deeplab_dpc/cells/` (the flagfiles name the
    published cell by that relative path, as from the repository root)."""
    work = tmp_path / "work"
    shutil.copytree(CELLS, work / "deeplab_dpc" / "cells")
    return work


def listing(folder):
    return sorted(os.path.relpath(os.path.join(d, name), folder)
                  for d, dirs, names in os.walk(folder) for name in dirs + names)


def dry_runs(module, requests, work, tmp_path):
    """Answers of `module`'s dry runs of `requests` (argument lists), run in `work`
    with an empty cache folder (no synthetic set to find)."""
    requests_path, answers_path = tmp_path / "requests.json", tmp_path / "answers.json"
    requests_path.write_text(json.dumps(requests))
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-m", "tests.zoo.dry_runs", module, str(requests_path),
         str(answers_path)], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "cache" / "deeplab_dpc").exists(), "a dry run generated data"
    return json.loads(answers_path.read_text())
