"""Importing TensorFlow without its C++ start-up log on the user's stderr.

A failing binary's stderr should end in its one `error:` line; on a machine
without a GPU TensorFlow 2.21 first prints several lines (absl's pre-init notice,
CUDA probing, `failed call to cuInit`) that TF_CPP_MIN_LOG_LEVEL does not hide.
Binaries and the library's late imports call `import_tensorflow()` instead of
`import tensorflow`.

The filter is a separate process reading a pipe: it outlives a crash of ours (so
an abort message during the import still reaches the user) and needs no GIL (so
a flood of C++ output cannot block on a full pipe).
"""
import json
import os
import subprocess
import sys
import threading

# What TensorFlow's C++ runtime prints on stderr while it starts on a machine without
# a GPU, whatever TF_CPP_MIN_LOG_LEVEL says (absl's logging is not yet initialised).
# Only these are dropped; every other line passes, so a real failure is never hidden
# (a cuInit error other than "no device here" stays visible).
STARTUP_LINES = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR",
    r"I\d{4} [\d:.]+\s+\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your "
    r"machine, GPU will not be used\.",
    r"E\d{4} [\d:.]+\s+\d+ cuda_platform\.cc:\d+\] failed call to cuInit: .*"
    r"(UNKNOWN ERROR \(303\)|CUDA_ERROR_NO_DEVICE|CUDA_ERROR_NOT_FOUND).*",
    # On CPUs that oneDNN speeds up (AVX-512, e.g. AMD EPYC), whatever the log level.
    r"I\d{4} [\d:.]+\s+\d+ port\.cc:\d+\] oneDNN custom operations are on\. .*",
    r"I\d{4} [\d:.]+\s+\d+ cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized "
    r"to use available CPU instructions .*",
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate "
    r"compiler flags\.",
    # oneDNN's notice at the first float16 op of a process (even on AVX-512 CPUs), logged
    # at error level; `import_tensorflow` runs one such op while the filter listens.
    r"E\d{4} [\d:.]+\s+\d+ util\.cc:\d+\] oneDNN supports DT_HALF only on platforms with "
    r"AVX-512\. Falling back to the default Eigen-based implementation if present\.",
)

# The filter process: stdin -> stdout (the real stderr), known lines dropped.
_FILTER = """
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
patterns = [re.compile(p) for p in {patterns}]
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    text = line.decode("utf-8", "replace").rstrip("\\r\\n")
    if not any(p.fullmatch(text) for p in patterns):
        out.write(line)
        out.flush()
"""


def start_filter(stdout):
    """The filter process: lines written to its stdin reach `stdout` (a descriptor)
    unless they are known start-up lines."""
    return subprocess.Popen(
        [sys.executable, "-S", "-c", _FILTER.format(patterns=json.dumps(STARTUP_LINES))],
        stdin=subprocess.PIPE, stdout=stdout, stderr=stdout, close_fds=True)


_lock = threading.Lock()
_module = []


def import_tensorflow():
    """Imports TensorFlow, initialises its devices (where CUDA is probed) and runs one
    float16 op, with the known start-up lines filtered out of stderr; returns the
    module."""
    with _lock:
        if not _module:
            sys.stderr.flush()
            real = os.dup(2)
            filter_process = start_filter(stdout=real)
            os.dup2(filter_process.stdin.fileno(), 2)
            try:
                import tensorflow as tf

                tf.config.list_physical_devices()
                # Float16 caches and mixed precision would print oneDNN's notice later.
                tf.cast(tf.zeros([1], tf.float16), tf.float32)
            finally:
                sys.stderr.flush()
                os.dup2(real, 2)  # the pipe's last write end closes: the filter drains, ends
                filter_process.stdin.close()
                os.close(real)
                try:
                    filter_process.wait(timeout=10)
                except subprocess.TimeoutExpired:  # a stalled reader of our stderr
                    pass
            _module.append(tf)
        return _module[0]
