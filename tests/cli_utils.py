"""Running the `python -m` binaries in a subprocess, as a user would."""
import os
import subprocess
import sys


def run_binary(module, *args, timeout=600, cwd=None, env=None):
    """Runs `python -m module args...` in the user's environment (no variable that
    quiets TensorFlow: the binaries must do that themselves); returns the
    CompletedProcess."""
    env = {k: v for k, v in (env or os.environ).items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)


def user_lines(stream):
    """The non-empty lines of `stream`."""
    return [line for line in stream.splitlines() if line.strip()]


def assert_one_line_error(result, *needles):
    """Bad input: exit code 2, stderr holds one `error:` line naming `needles` and
    nothing else (no traceback, no TensorFlow start-up log)."""
    lines = user_lines(result.stderr)
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]
