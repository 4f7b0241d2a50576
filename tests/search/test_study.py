"""The study file: schema versions, bound settings, leases, finished rows that never
change, and the one-line errors of a bad study."""
import os
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from deeplab_dpc.errors import InputError
from deeplab_dpc.search import study as study_lib
from deeplab_dpc.search.study import Study

SETTINGS = {"cache_content_hash": "abc", "proxy": {"training_number_of_steps": 4},
            "sampler": {"num_branches": 1, "seed": 0}}


def _study(tmp_path, settings=SETTINGS):
    s = Study(tmp_path / "s.sqlite", create=True)
    s.bind(settings)
    return s


def _add(s, key, state="running", owner=None, expires=None, score=None):
    with s.transaction() as conn:
        trial_id = s.insert_trial(conn, key, 0, [{"kernel": 1, "op": "conv", "input": -1}],
                                  "uniform", state=state)
        if state == "running":
            conn.execute("UPDATE trials SET owner = ?, expires = ? WHERE id = ?",
                         (owner, expires, trial_id))
        if score is not None:
            conn.execute("UPDATE trials SET score = ?, result = '{}' WHERE id = ?",
                         (score, trial_id))
    return trial_id


def test_a_new_study_has_the_current_schema_version(tmp_path):
    s = _study(tmp_path)
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == study_lib.SCHEMA_VERSION
    assert s.settings == SETTINGS


def test_settings_are_bound_and_a_change_is_refused_naming_the_field(tmp_path):
    _study(tmp_path).close()
    _study(tmp_path).close()  # the same settings: fine
    changed = dict(SETTINGS, sampler={"num_branches": 3, "seed": 0})
    with pytest.raises(InputError, match=r"differs in sampler\.num_branches: 1 there, 3 now"):
        _study(tmp_path, changed)
    with pytest.raises(InputError, match="cache_content_hash"):
        _study(tmp_path, dict(SETTINGS, cache_content_hash="other"))


def test_a_study_of_newer_code_is_refused(tmp_path):
    _study(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "s.sqlite")
    conn.execute(f"PRAGMA user_version = {study_lib.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(InputError, match="written by newer code"):
        Study(tmp_path / "s.sqlite")


def test_an_older_study_migrates_forward_keeping_its_trials(tmp_path, monkeypatch):
    s = _study(tmp_path)
    _add(s, "k1", state="pending")
    s.close()
    version = study_lib.SCHEMA_VERSION + 1
    migrations = dict(study_lib.MIGRATIONS)
    migrations[version] = ["CREATE TABLE later (id INTEGER PRIMARY KEY, trial_id INTEGER)"]
    monkeypatch.setattr(study_lib, "MIGRATIONS", migrations)
    monkeypatch.setattr(study_lib, "SCHEMA_VERSION", version)
    s = Study(tmp_path / "s.sqlite")
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == version
    assert [t.key for t in s.trials()] == ["k1"]
    s.conn.execute("INSERT INTO later (trial_id) VALUES (1)")


def test_a_finished_row_never_changes(tmp_path):
    s = _study(tmp_path)
    trial = _add(s, "k1", owner="me", expires=time.time() + 60)
    assert s.finish(trial, "me", "done", 0.5, {"score": 0.5})
    for statement in ("UPDATE trials SET score = 0.9 WHERE id = 1",
                      "UPDATE trials SET state = 'running' WHERE id = 1",
                      "DELETE FROM trials WHERE id = 1"):
        with pytest.raises(sqlite3.IntegrityError, match="never changes"):
            s.conn.execute(statement)
    assert not s.finish(trial, "me", "done", 0.9, {})  # not ours any more: nothing written
    assert s.trials()[0].score == 0.5


def test_leases_of_dead_owners_and_expired_leases_are_reclaimable(tmp_path):
    s = _study(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    now = time.time()
    _add(s, "dead_owner", owner=f"{host}:{dead.pid}:x", expires=now + 600)
    _add(s, "expired", owner=f"{host}:{os.getpid()}:x", expires=now - 1)
    _add(s, "alive", owner=f"{host}:{os.getpid()}:x", expires=now + 600)
    _add(s, "other_host", owner=f"elsewhere:{dead.pid}:x", expires=now + 600)
    assert [t.key for t in s.reclaimable(s.conn, now)] == ["dead_owner", "expired"]


def test_a_crashed_trial_is_retried_once_then_failed(tmp_path):
    s = _study(tmp_path)
    trial = _add(s, "k", owner="me", expires=time.time() + 60)
    assert s.crashed(trial, "me", "boom") == "pending"
    with s.transaction() as conn:
        s.take(conn, trial, "me", 60, time.time())
    assert s.crashed(trial, "me", "boom again") == "failed"
    t = s.trials()[0]
    assert (t.state, t.crashes, t.error) == ("failed", 2, "boom again")


def test_a_dead_workers_trials_count_as_crashed_and_no_others(tmp_path):
    s = _study(tmp_path)
    host, now = socket.gethostname(), time.time() + 60
    mine = _add(s, "mine", owner=f"{host}:4242:a", expires=now)
    _add(s, "pid_prefix", owner=f"{host}:42420:b", expires=now)  # pid 42420, not 4242
    _add(s, "elsewhere", owner=f"other:4242:c", expires=now)
    assert s.process_died(4242, "killed") == [(mine, "pending")]
    with s.transaction() as conn:
        s.take(conn, mine, f"{host}:4242:d", 60, time.time())
    assert s.process_died(4242, "killed again") == [(mine, "failed")]
    assert {t.key: (t.state, t.crashes) for t in s.trials()} == {
        "mine": ("failed", 2), "pid_prefix": ("running", 0), "elsewhere": ("running", 0)}


def test_the_median_rule_needs_enough_finished_trials(tmp_path):
    s = _study(tmp_path)
    stop = s.median_stopper(3)
    for i, score in enumerate((0.2, 0.4)):
        trial = _add(s, f"k{i}", owner="me", expires=time.time() + 60)
        s.finish(trial, "me", "done", score, {"intermediate": {"10": score}})
    assert not stop(10, 0.0)  # two finished trials: too few for the rule
    trial = _add(s, "k3", owner="me", expires=time.time() + 60)
    s.finish(trial, "me", "stopped", 0.6, {"intermediate": {"10": 0.6}})
    assert s.scores_at(10) == [0.2, 0.4, 0.6]
    assert stop(10, 0.39) and not stop(10, 0.4) and not stop(20, 0.0)


def test_a_kill_inside_a_transaction_leaves_none_of_it(tmp_path):
    path = tmp_path / "s.sqlite"
    _study(tmp_path).close()
    code = ("from deeplab_dpc.search.study import Study\n"
            f"s = Study({str(path)!r})\n"
            "with s.transaction() as c:\n"
            "    s.insert_trial(c, 'k', 0, [], 'uniform')\n")
    env = dict(os.environ, DEEPLAB_DPC_KILL_AFTER="study transaction:1")
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == -9
    assert Study(path).trials() == []
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    assert [t.key for t in Study(path).trials()] == ["k"]


@pytest.mark.parametrize("content,needle", [
    (b"this is not a database at all" * 100, "not an SQLite file"),
    (None, "not a study"),
])
def test_a_file_that_is_not_a_study_is_one_line(tmp_path, content, needle):
    path = tmp_path / "bad.sqlite"
    if content is None:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE something (x)")
        conn.close()
    else:
        path.write_bytes(content)
    with pytest.raises(InputError, match=needle) as e:
        Study(path)
    assert "\n" not in str(e.value)


def test_an_unwritable_study_path_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(InputError, match="cannot create its folder"):
        Study(tmp_path / "a_file" / "s.sqlite", create=True)
    with pytest.raises(InputError, match="does not exist"):
        Study(tmp_path / "missing.sqlite")


def test_a_version_1_study_gains_the_rerank_tables(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(study_lib, "MIGRATIONS", {1: study_lib.MIGRATIONS[1]})
        patch.setattr(study_lib, "SCHEMA_VERSION", 1)
        s = _study(tmp_path)
        _add(s, "k1", state="pending")
        s.close()
    s = Study(tmp_path / "s.sqlite")
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert [t.key for t in s.trials()] == ["k1"]
    s.conn.execute("INSERT INTO schedules (hash, flags, created) VALUES ('h', '[]', 0)")
    for seed, miou in ((0, 0.5), (1, 0.7)):
        s.conn.execute("INSERT INTO reranks (key, seed, schedule, origin, cell, run_dir, state, "
                       "search_miou, val_miou, created) VALUES ('k1', ?, 'h', 'top', '[]', "
                       "'d', 'done', ?, ?, 0)", (seed, miou, miou - 0.1))
    row = s.conn.execute("SELECT runs, search_mean, search_min, search_max, val_mean "
                         "FROM rerank_summary").fetchone()
    assert row == pytest.approx((2, 0.6, 0.5, 0.7, 0.5))
    with pytest.raises(sqlite3.DatabaseError, match="never changes"):
        s.conn.execute("UPDATE reranks SET search_miou = 0.9 WHERE seed = 0")
