"""Importing TensorFlow without its C++ start-up log on the user's stderr.

A failing binary's stderr should end in its one `error:` line; on a machine
without a GPU TensorFlow 2.21 first prints several lines (absl's pre-init notice,
CUDA probing, `failed call to cuInit`) that TF_CPP_MIN_LOG_LEVEL does not hide.
Binaries and the library's late imports call `import_tensorflow()` instead of
`import tensorflow`.
"""
import contextlib
import os
import re
import sys
import threading


# What TensorFlow's C++ runtime prints on stderr while it starts on a machine without
# a GPU, whatever TF_CPP_MIN_LOG_LEVEL says (absl's logging is not yet initialised).
# Only these are dropped; every other line passes, so a real crash is never hidden.
STARTUP_LINES = tuple(re.compile(p) for p in (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR",
    r"[IWE]\d{4} [\d:.]+\s+\d+ (cudart_stub|cuda_platform|cuda_diagnostics|cuda_executor|"
    r"cpu_feature_guard|cuda_dnn|cuda_fft|cuda_blas|port)\.cc:\d+\] .*",
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate "
    r"compiler flags\.",
    r"This TensorFlow binary is optimized to use available CPU instructions .*",
))


def is_startup_line(line):
    """Whether `line` (without its newline) is one of TensorFlow's known start-up lines."""
    return any(p.fullmatch(line) for p in STARTUP_LINES)


@contextlib.contextmanager
def _filtered_stderr():
    """File descriptor 2 through a pipe that drops `STARTUP_LINES` (C++ writes to the
    descriptor itself, past Python's sys.stderr)."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not is_startup_line(line.decode("utf-8", "replace").rstrip("\r\n")):
                    os.write(real, line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end: the pump drains and ends
        thread.join(timeout=10)
        os.close(real)


_started = []


def import_tensorflow():
    """Imports TensorFlow and initialises its devices (where CUDA is probed) with the
    known start-up lines filtered out of stderr; returns the module."""
    if not _started:
        with _filtered_stderr():
            import tensorflow as tf

            tf.config.list_physical_devices()
        _started.append(tf)
    return _started[0]
