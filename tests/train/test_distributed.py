"""Replicas and workers give the update of one device on the same global batch.

See `distributed_run` for the batch (ignore pixels split unevenly between the
replicas), the model (BN training, synchronized) and why it computes in float64.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from deeplab_dpc.data import datasets
from tests.train import distributed_run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_S = 400


def _info_dir(root):
    path = root / "data"
    datasets.write_dataset_info(str(path), datasets.DatasetInfo(name="toy", num_classes=3))
    return str(path)


def _start(mode, out, logdir, dataset_dir, env=None):
    """The run in a subprocess; its output goes to OUT.log (a pipe nobody reads while
    we wait could fill up and block it)."""
    with open(f"{out}.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.train.distributed_run", mode, str(out), str(logdir),
             dataset_dir], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {})))
    process.log_path = f"{out}.log"
    return process


def _finish(processes):
    """Waits for every process (bounded); as soon as one fails, or at the deadline,
    kills the others (a worker whose peer died would wait for it) and fails."""
    deadline = time.time() + TIMEOUT_S
    try:
        while any(p.poll() is None for p in processes) and time.time() < deadline:
            if any(p.poll() not in (None, 0) for p in processes):
                break
            time.sleep(0.5)
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    for p in processes:
        p.wait()
        with open(p.log_path) as f:
            assert p.returncode == 0, f.read()[-3000:]


def _assert_same(result, reference):
    np.testing.assert_allclose(result["losses"], reference["losses"], rtol=1e-5, atol=1e-6)
    names = [k for k in reference if k != "losses"]
    assert len(names) > 300  # every weight, BN moving statistics included
    for name in names:
        np.testing.assert_allclose(result[name], reference[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(root, data):
    """The two MultiWorkerMirrored workers on two free loopback ports."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    workers = {}
    for i in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": i}}
        workers[f"worker{i}"] = _start("worker", root / f"worker{i}.npz", root / "workers",
                                       data, env={"TF_CONFIG": json.dumps(config)})
    return workers


def _finish_workers(root, data, workers):
    """Waits for the workers. A port picked by `_free_ports` is free only until another
    process (a test in the other pytest -n worker) binds it, and TensorFlow's gRPC
    server does not share ports (no SO_REUSEPORT): if a worker lost its port to
    such a race, the pair runs once more on new ports."""
    try:
        _finish(list(workers.values()))
        return workers
    except AssertionError as error:
        if "Could not start gRPC server" not in str(error):
            raise
    shutil.rmtree(root / "workers", ignore_errors=True)
    workers = _start_workers(root, data)
    _finish(list(workers.values()))
    return workers


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Starts the mirrored run and the two workers, trains the single-device
    reference in this process meanwhile, then collects every result."""
    root = tmp_path_factory.mktemp("distributed")
    data = _info_dir(root)
    mirrored = _start("mirrored", root / "mirrored.npz", root / "mirrored", data)
    workers = _start_workers(root, data)
    try:
        single = distributed_run.run(None, str(root / "single"), data)
    except BaseException:
        _finish([mirrored, *workers.values()])
        raise
    _finish([mirrored])
    workers = _finish_workers(root, data, workers)
    names = ["mirrored", *workers]
    return root, single, {name: dict(np.load(root / f"{name}.npz")) for name in names}


# One test for both strategies: pytest -n 2 may hand two tests of this module to two
# workers, and each would then run the (minutes-long) fixture.
@pytest.mark.slow
def test_mirrored_replicas_and_workers_match_one_device(runs):
    root, single, results = runs
    # Two mirrored replicas on one machine.
    assert results["mirrored"]["losses"].shape == (distributed_run.STEPS,)
    _assert_same(results["mirrored"], single)
    # Two MultiWorkerMirrored workers.
    _assert_same(results["worker0"], results["worker1"])
    _assert_same(results["worker0"], single)
    # Only the chief keeps checkpoints; the other worker's scratch copy is gone.
    kept = sorted(os.listdir(root / "workers"))
    assert f"ckpt-{distributed_run.STEPS}.index" in kept and ".worker1" not in kept
