"""Running the `python -m` binaries in a subprocess, as a user would."""
import os
import re
import subprocess
import sys

# TensorFlow's C++ runtime logs a few lines at import (CUDA probing) that no
# environment variable silences; they are not the binary's own output.
_TF_RUNTIME_LINE = re.compile(
    r"^([IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|WARNING: All log messages before absl::InitializeLog)")


def run_binary(module, *args, timeout=600, cwd=None):
    """Runs `python -m module args...`; returns the CompletedProcess."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)


def user_lines(stream):
    """The non-empty lines of `stream` that did not come from TF's C++ runtime."""
    return [l for l in stream.splitlines() if l.strip() and not _TF_RUNTIME_LINE.match(l)]


def assert_one_line_error(result, *needles):
    """Bad input: non-zero exit, one `error:` line naming `needles`, no traceback."""
    lines = user_lines(result.stderr)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]
