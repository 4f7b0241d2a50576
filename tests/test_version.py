"""`code_version()`: the commit a study's results were scored with."""
import os
import shutil
import subprocess
import sys

import pytest

import deeplab_dpc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(deeplab_dpc.__file__)))


def _git(*args, cwd=ROOT):
    return subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True)


def _version_of(package_parent):
    code = "import deeplab_dpc; print(deeplab_dpc.code_version())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=package_parent,
                          env=dict(os.environ, PYTHONPATH=package_parent)).stdout.strip()


def test_a_checkout_names_its_commit():
    head = _git("rev-parse", "--short=12", "HEAD")
    if head.returncode or not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("not running from a git checkout")
    version = deeplab_dpc.code_version()
    assert version.startswith(f"{deeplab_dpc.__version__}+g{head.stdout.strip()}")
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "deeplab_dpc").stdout
    assert version.endswith(".dirty") == bool(dirty.strip())


def _copy_package(parent):
    os.makedirs(parent / "deeplab_dpc")
    shutil.copy(deeplab_dpc.__file__, parent / "deeplab_dpc" / "__init__.py")
    return str(parent)


def test_a_package_inside_another_repository_gives_the_bare_version(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("no git")
    parent = _copy_package(tmp_path / "vendor")
    assert _git("init", "-q", cwd=str(tmp_path)).returncode == 0
    assert _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
                "-m", "theirs", cwd=str(tmp_path)).returncode == 0  # a HEAD that is not ours
    assert _version_of(parent) == deeplab_dpc.__version__


def test_a_package_outside_any_repository_gives_the_bare_version(tmp_path):
    if _git("rev-parse", cwd=str(tmp_path)).returncode == 0:
        pytest.skip("the temporary folder lies inside a repository")
    assert _version_of(_copy_package(tmp_path / "plain")) == deeplab_dpc.__version__
