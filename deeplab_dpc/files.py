"""Writing outputs atomically: a reader sees a whole file (or folder) or none.

Every writer of the package goes through here. The temporary sits beside its
target under a hidden name, `.{name}.tmp-{host}-{pid}`, that no reader's
pattern (`train-*`, `*.json`) matches, and is renamed into place only when
complete. Local paths use `os` (no TensorFlow import); paths with a scheme
(`gs://...`) go through `tf.io.gfile`.
"""
import contextlib
import glob
import json
import os
import shutil
import socket

from deeplab_dpc.common import CHECKPOINT_NAME

TEMP_MARKER = ".tmp-"


def _remote(path):
    return "://" in os.fspath(path)


def temp_path(path):
    """The hidden temporary name for `path`, unique to this host and process."""
    folder, name = os.path.split(os.fspath(path).rstrip("/"))
    return os.path.join(folder, f".{name}{TEMP_MARKER}{socket.gethostname()}-{os.getpid()}")


def _gfile():
    from deeplab_dpc.tf_import import import_tensorflow

    return import_tensorflow().io.gfile


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
    folder, name = os.path.split(path)
    makedirs(folder or ".")
    # Leftovers of this target from killed writers (and from a recycled pid: ours).
    remove_stale_temporaries(folder or ".", lambda target: target == name)
    tmp = temp_path(path)
    _remove(tmp)
    try:
        yield tmp
        if _remote(path):
            if _gfile().isdir(tmp):
                raise ValueError(f"{path}: object stores cannot rename a folder; write it "
                                 "in place (readers trust a manifest written last)")
            _gfile().rename(tmp, path, overwrite=True)
        else:
            if os.path.isdir(tmp) and os.path.isdir(path):
                _remove(path)
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_paths(paths):
    """`atomic_path` for several targets: each is renamed into place only after the
    body succeeded for all of them; on failure every temporary is removed."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_path(p)) for p in paths]


def write_atomically(path, data):
    """Writes bytes or text to `path` through a temporary; returns `path`."""
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    with atomic_path(path) as tmp:
        if _remote(tmp):
            with _gfile().GFile(tmp, mode) as f:
                f.write(data)
        else:
            with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
                f.write(data)
    return os.fspath(path)


def write_json_atomically(path, content, indent=2):
    return write_atomically(path, json.dumps(content, indent=indent) + "\n")


# ----------------------------------------------------------------------- stale temporaries
def _temp_owner(name):
    """(target name, host, pid) of one of our temporaries, or None."""
    if not name.startswith(".") or TEMP_MARKER not in name:
        return None
    target, _, owner = name[1:].rpartition(TEMP_MARKER)
    host, _, pid = owner.rpartition("-")
    return (target, host, int(pid)) if pid.isdigit() and host else None


def is_temporary(path):
    """Whether `path` names a temporary of `atomic_path` (readers skip these)."""
    return _temp_owner(os.path.basename(os.fspath(path).rstrip("/"))) is not None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder, matches=lambda target: True):
    """Removes the temporaries in `folder` (of targets for which `matches(name)`) left by
    a process of this host that is gone: a killed writer's. Those of a live process (a
    parallel worker), and those of other hosts (which we cannot ask), stay. Local folders
    only: on an object store readers trust the manifest instead. Returns the names."""
    folder = os.fspath(folder)
    if _remote(folder) or not os.path.isdir(folder):
        return []
    removed, host = [], socket.gethostname()
    for name in sorted(os.listdir(folder)):
        owner = _temp_owner(name)
        if owner and owner[1] == host and matches(owner[0]) and not _alive(owner[2]):
            _remove(os.path.join(folder, name))
            removed.append(name)
    return removed


def die_with_parent(parent_pid=None):
    """Makes this (pool worker) process die when its parent does, even by SIGKILL, so
    a killed job leaves no orphan writing into its folder (Linux; elsewhere a no-op).
    `parent_pid`: the parent's pid, to catch a parent that died before this ran."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


# --------------------------------------------------------------------- checking outputs
def checkpoints_note(path):
    """'; <folder> has ckpt-1, ckpt-7' for a checkpoint path that does not exist, when
    the folder it names holds checkpoints (else ''): the error says what to pass."""
    folder = os.path.dirname(os.fspath(path).rstrip("/"))
    if not folder:
        return ""
    pattern = os.path.join(folder, f"{CHECKPOINT_NAME}-*.index")
    found = _gfile().glob(pattern) if _remote(folder) else glob.glob(pattern)
    suffixes = (p[:-len(".index")].rsplit("-", 1)[1] for p in found)
    steps = sorted(int(s) for s in suffixes if s.isdigit())
    if not steps:
        return ""
    return f"; {folder} has " + ", ".join(f"{CHECKPOINT_NAME}-{s}" for s in steps)


def check_output_dir(path, param):
    """InputError naming `param`, before any work, if `path` cannot become a folder we
    write in: it is a file, lies under a regular file, or we may not write there."""
    from deeplab_dpc.errors import InputError

    path = os.fspath(path)
    if not path:
        raise InputError(f"{param} is required", param=param)
    if _remote(path):
        return path
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{param} {path} is a file, not a folder", param=param)
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError(f"{param} {path}: {existing} is a file, not a folder", param=param)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{param} {path}: no permission to write in {existing}", param=param)
    return path


# ------------------------------------------------------------------------- reading JSON
MAX_JSON_BYTES = 1 << 20  # a cell, a label map or a run config is kilobytes
MAX_JSON_DEPTH = 32  # the deepest we write is 4 (a run config's cell)


def _depth(value):
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node if isinstance(
            node, list) else ()
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def parse_json(text, where, max_depth=MAX_JSON_DEPTH, max_bytes=MAX_JSON_BYTES):
    """Parsed JSON, or InputError naming `where` (a file, a field) for malformed, too
    large or too deeply nested JSON."""
    from deeplab_dpc.errors import InputError

    if len(text) > max_bytes:
        raise InputError(f"{where}: {len(text)} characters of JSON, more than the "
                         f"{max_bytes} allowed")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({e})") from None
    except RecursionError:  # the C parser stops safely where Python's stack would end
        raise InputError(f"{where}: JSON nested more than {max_depth} levels deep") from None
    if _depth(value) > max_depth:
        raise InputError(f"{where}: JSON nested more than {max_depth} levels deep")
    return value


def read_json(path, what="JSON file", max_bytes=MAX_JSON_BYTES):
    """Parsed JSON of a file (local or gfile), bounded as `parse_json`; InputError
    naming the file when it is missing, unreadable, too large or malformed."""
    from deeplab_dpc.errors import InputError

    path = os.fspath(path)
    remote = _remote(path)
    errors = (OSError, _gfile_errors()) if remote else OSError
    try:
        size = _gfile().stat(path).length if remote else os.path.getsize(path)
        if size > max_bytes:
            raise InputError(f"{path}: larger than the {max_bytes} bytes a {what} may have")
        if remote:
            with _gfile().GFile(path, "rb") as f:
                data = f.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: {what} is not UTF-8 text ({e})") from None
    except errors as e:
        reason = getattr(e, "strerror", None) or getattr(e, "message", None) or e
        raise InputError(f"{path}: cannot read {what} ({reason})") from None
    return parse_json(text, path, max_bytes=max_bytes)


def _gfile_errors():
    from deeplab_dpc.tf_import import import_tensorflow

    return import_tensorflow().errors.OpError
