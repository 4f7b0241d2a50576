"""Writing outputs atomically: a reader sees a whole file (or folder) or none.

Every writer of the package goes through here. The temporary sits beside its
target under a hidden name, `.{name}.tmp-{host}-{pid}`, that no reader's
pattern (`train-*`, `*.json`) matches, and is renamed into place only when
complete. Local paths use `os` (no TensorFlow import); paths with a scheme
(`gs://...`) go through `tf.io.gfile`.
"""
import contextlib
import json
import os
import shutil
import socket

TEMP_MARKER = ".tmp-"


def _remote(path):
    return "://" in os.fspath(path)


def temp_path(path):
    """The hidden temporary name for `path`, unique to this host and process."""
    folder, name = os.path.split(os.fspath(path).rstrip("/"))
    return os.path.join(folder, f".{name}{TEMP_MARKER}{socket.gethostname()}-{os.getpid()}")


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def _remove(path):
    if _remote(path):
        gfile = _gfile()
        if gfile.isdir(path):
            gfile.rmtree(path)
        elif gfile.exists(path):
            gfile.remove(path)
    elif os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def makedirs(path):
    if _remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write `path` under (a file or a folder); on success
    renames it into place, replacing what was there; on failure removes it."""
    path = os.fspath(path).rstrip("/")
    makedirs(os.path.dirname(path) or ".")
    tmp = temp_path(path)
    _remove(tmp)  # our own leftover from a killed process with a recycled pid
    try:
        yield tmp
        if _remote(path):
            gfile = _gfile()
            if gfile.isdir(tmp):  # object stores cannot swap folders: replace in place
                if gfile.exists(path):
                    gfile.rmtree(path)
            gfile.rename(tmp, path, overwrite=True)
        else:
            if os.path.isdir(tmp) and os.path.isdir(path):
                _remove(path)
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_atomically(path, data):
    """Writes bytes or text to `path` through a temporary; returns `path`."""
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    with atomic_path(path) as tmp:
        if _remote(tmp):
            with _gfile().GFile(tmp, mode) as f:
                f.write(data)
        else:
            with open(tmp, mode) as f:
                f.write(data)
    return os.fspath(path)


def write_json_atomically(path, content, indent=2):
    return write_atomically(path, json.dumps(content, indent=indent) + "\n")
