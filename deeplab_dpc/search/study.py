"""The study: one SQLite file that every worker of a search shares.

Tables of schema version 1 (the version is in `PRAGMA user_version`):
  meta        name -> JSON value: `settings` (what the trials depend on: the
              cache's content hash, proxy settings, B, seed, sampling and budget
              settings; a restart with another value is refused, naming it) and
              `feature_cache_dir`.
  trials      one row per (key, seed): the head JSON, where it came from
              (candidate index, uniform / near_best / baseline, parent key), its
              state (pending, running, done, failed, stopped), score and full
              result (JSON), and while running a lease (owner, heartbeat, expiry).
              A trigger refuses any change to a finished row.
  candidates  every draw of the seed stream: index, key, and what became of it
              (trial, collision, over_budget), so a resumed search continues the
              stream where it stopped and collisions stay on record.
Schema version 2 adds re-ranking: `schedules` (hash -> the training flags of a
re-rank), `reranks` (one end-to-end run per (key, seed, schedule): state, run
directory, mIOU on the search split and on val; finished rows never change) and the
view `rerank_summary` (runs, mean, min and max per key and schedule). Proxy trials
outside the search's stream sit in `trials` too: baselines (origin `baseline`, at
the study's seed) and repeats of one cell at other seeds (origin `repeat`, the
noise floor). Each version's tables come through `MIGRATIONS`; a file of a newer
version is refused in one line. Transactions are `BEGIN IMMEDIATE`
(one writer at a time, others wait), so a SIGKILL at any moment leaves either
the whole transaction or none of it.
"""
import contextlib
import json
import os
import socket
import sqlite3
import statistics
import time
import uuid

from deeplab_dpc.errors import InputError
from deeplab_dpc.progress import kill_point

STATES = ("pending", "running", "done", "failed", "stopped")
# Origins of the search's own trials; `baseline` and `repeat` trials (re-ranking's) are
# scored on the proxy too but never rank, parent or stop the search's candidates.
SEARCH_ORIGINS = ("uniform", "near_best")
_SEARCH = f"origin IN ({', '.join(repr(o) for o in SEARCH_ORIGINS)})"
FINISHED = ("done", "failed", "stopped")
MAX_CRASHES = 2  # a crashed trial is retried once, then marked failed

# MIGRATIONS[v] takes a study from version v - 1 to v.
MIGRATIONS = {
    1: [
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE trials (
             id INTEGER PRIMARY KEY,
             key TEXT NOT NULL,
             seed INTEGER NOT NULL,
             candidate INTEGER,
             origin TEXT NOT NULL,
             parent_key TEXT,
             cell TEXT NOT NULL,
             state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed',
                                                  'stopped')),
             score REAL,
             result TEXT,
             error TEXT,
             crashes INTEGER NOT NULL DEFAULT 0,
             owner TEXT,
             heartbeat REAL,
             expires REAL,
             created REAL NOT NULL,
             finished REAL,
             UNIQUE (key, seed))""",
        """CREATE TABLE candidates (
             idx INTEGER PRIMARY KEY,
             key TEXT NOT NULL,
             outcome TEXT NOT NULL CHECK (outcome IN ('trial', 'collision', 'over_budget')),
             trial_id INTEGER,
             detail TEXT)""",
        """CREATE TRIGGER finished_trials_never_change BEFORE UPDATE ON trials
             WHEN OLD.state IN ('done', 'failed', 'stopped')
             BEGIN SELECT RAISE(ABORT, 'a finished trial never changes'); END""",
        """CREATE TRIGGER finished_trials_stay BEFORE DELETE ON trials
             WHEN OLD.state IN ('done', 'failed', 'stopped')
             BEGIN SELECT RAISE(ABORT, 'a finished trial never changes'); END""",
    ],
    # Re-ranking (`deeplab_dpc.rerank`): end-to-end runs of chosen cells, per seed and
    # training schedule, and their mean and range per cell.
    2: [
        """CREATE TABLE schedules (hash TEXT PRIMARY KEY, flags TEXT NOT NULL,
                                   created REAL NOT NULL)""",
        """CREATE TABLE reranks (
             id INTEGER PRIMARY KEY,
             key TEXT NOT NULL,
             seed INTEGER NOT NULL,
             schedule TEXT NOT NULL REFERENCES schedules (hash),
             origin TEXT NOT NULL CHECK (origin IN ('top', 'spread', 'baseline')),
             cell TEXT NOT NULL,
             run_dir TEXT NOT NULL,
             state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
             search_miou REAL,
             val_miou REAL,
             result TEXT,
             error TEXT,
             owner TEXT,
             created REAL NOT NULL,
             finished REAL,
             UNIQUE (key, seed, schedule))""",
        """CREATE TRIGGER finished_reranks_never_change BEFORE UPDATE ON reranks
             WHEN OLD.state IN ('done', 'failed')
             BEGIN SELECT RAISE(ABORT, 'a finished re-rank run never changes'); END""",
        """CREATE TRIGGER finished_reranks_stay BEFORE DELETE ON reranks
             WHEN OLD.state IN ('done', 'failed')
             BEGIN SELECT RAISE(ABORT, 'a finished re-rank run never changes'); END""",
        """CREATE VIEW rerank_summary AS
             SELECT key, schedule, MIN(origin) AS origin, COUNT(*) AS runs,
                    AVG(search_miou) AS search_mean, MIN(search_miou) AS search_min,
                    MAX(search_miou) AS search_max, AVG(val_miou) AS val_mean,
                    MIN(val_miou) AS val_min, MAX(val_miou) AS val_max
             FROM reranks WHERE state = 'done' GROUP BY key, schedule""",
    ],
}
SCHEMA_VERSION = max(MIGRATIONS)


def make_owner():
    """host:pid:nonce, so that a rerun on this host can tell a dead owner at once."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner):
    """True only when the owner ran on this host and its process is gone."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    if int(pid) == os.getpid():
        return False
    # A zombie (a killed child not yet reaped) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


class Trial:
    """A trials row, as a plain object."""

    FIELDS = ("id", "key", "seed", "candidate", "origin", "parent_key", "cell", "state",
              "score", "result", "error", "crashes", "owner", "heartbeat", "expires",
              "created", "finished")

    def __init__(self, row):
        for name, value in zip(self.FIELDS, row):
            setattr(self, name, value)
        self.cell = json.loads(self.cell)
        self.result = json.loads(self.result) if self.result else None


def _describe_db_error(path, error):
    return InputError(f"study {path}: not an SQLite file we can read ({error})", param="study")


class Study:
    """An open study file. `create=True` makes it (and its schema) if missing."""

    def __init__(self, path, create=False, timeout=120.0):
        self.path = os.fspath(path)
        if "://" in self.path:
            raise InputError(f"study {self.path}: a study is a SQLite file on a local disk "
                             "(the feature cache may be remote, the study may not)",
                             param="study")
        exists = os.path.exists(self.path)
        if not exists and not create:
            raise InputError(f"study {self.path} does not exist", param="study")
        if exists and not os.path.isfile(self.path):
            raise InputError(f"study {self.path} is not a file", param="study")
        if not exists:
            folder = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(folder):
                try:
                    os.makedirs(folder, exist_ok=True)
                except OSError as e:
                    raise InputError(f"study {self.path}: cannot create its folder "
                                     f"({e.strerror})", param="study") from None
            if not os.access(folder, os.W_OK | os.X_OK):
                raise InputError(f"study {self.path}: no permission to write in {folder}",
                                 param="study")
        elif not os.access(self.path, os.R_OK | os.W_OK):
            raise InputError(f"study {self.path}: no permission to read and write it",
                             param="study")
        self._transactions = 0
        try:
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise _describe_db_error(self.path, e) from None

    def close(self):
        self.conn.close()

    # ------------------------------------------------------------------ schema
    def _migrate(self):
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise InputError(f"study {self.path} has schema version {version}, written by "
                             f"newer code (this reads up to {SCHEMA_VERSION}); upgrade "
                             "deeplab-dpc", param="study")
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                tables = self.conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'").fetchall()
                if tables:
                    raise InputError(f"study {self.path}: an SQLite file that is not a study "
                                     f"(it has table {tables[0][0]!r})", param="study")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[v]:
                    self.conn.execute(statement)
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def transaction(self):
        """One write transaction (BEGIN IMMEDIATE ... COMMIT). Test hook: the N-th
        transaction of this process is killed before its commit
        (`DEEPLAB_DPC_KILL_AFTER="study transaction:N"`)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self._transactions += 1
            kill_point("study transaction", self._transactions)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    # -------------------------------------------------------------------- meta
    def get_meta(self, name, default=None):
        row = self.conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, name, value):
        self.conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                          (name, json.dumps(value, sort_keys=True)))

    def bind(self, settings, **extra_meta):
        """Records `settings` on a new study; refuses a study bound to other ones,
        naming the first differing field."""
        from deeplab_dpc.cache_features.format import canonical, settings_difference

        settings = canonical(settings)
        with self.transaction():
            old = self.get_meta("settings")
            if old is None:
                self.set_meta("settings", settings)
                for name, value in extra_meta.items():
                    self.set_meta(name, value)
                return
        field = settings_difference(old, settings)
        if field:
            raise InputError(f"study {self.path} was started with other settings (differs in "
                             f"{field}: {json.dumps(_get(old, field))} there, "
                             f"{json.dumps(_get(settings, field))} now); use a new study",
                             param="study")

    @property
    def settings(self):
        return self.get_meta("settings")

    # ------------------------------------------------------------------ trials
    def trials(self, states=None, seed=None):
        query, args = "SELECT * FROM trials", []
        where = []
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args += list(states)
        if seed is not None:
            where.append("seed = ?")
            args.append(seed)
        if where:
            query += " WHERE " + " AND ".join(where)
        return [Trial(r) for r in self.conn.execute(query + " ORDER BY id", args)]

    def counts(self):
        counts = dict.fromkeys(STATES, 0)
        for state, n in self.conn.execute("SELECT state, COUNT(*) FROM trials GROUP BY state"):
            counts[state] = n
        return counts

    def top(self, k, seed=None):
        """The k best done search trials (score descending, earlier first on ties)."""
        query = f"SELECT * FROM trials WHERE state = 'done' AND {_SEARCH}"
        args = []
        if seed is not None:
            query += " AND seed = ?"
            args.append(seed)
        query += " ORDER BY score DESC, id LIMIT ?"
        return [Trial(r) for r in self.conn.execute(query, args + [k])]

    def candidates(self):
        return self.conn.execute(
            "SELECT idx, key, outcome, trial_id, detail FROM candidates ORDER BY idx").fetchall()

    def scores_at(self, step):
        """Scores at `step` of the finished trials that recorded one (early stopping)."""
        out = []
        for (result,) in self.conn.execute(
                f"SELECT result FROM trials WHERE state IN ('done', 'stopped') AND {_SEARCH} "
                "ORDER BY id"):
            value = json.loads(result).get("intermediate", {}).get(str(step))
            if value is not None:
                out.append(value)
        return out

    def median_stopper(self, min_trials):
        """The local early-stopping rule: stop when the score at step k is below the
        median of at least `min_trials` finished trials' scores at k."""
        def stop(step, score):
            scores = self.scores_at(step)
            return len(scores) >= min_trials and score < statistics.median(scores)

        return stop

    # ------------------------------------------------------------ leases, states
    def reclaimable(self, conn, now):
        """Running trials whose owner is gone: lease expired, or a dead process here."""
        rows = conn.execute("SELECT * FROM trials WHERE state = 'running' ORDER BY id").fetchall()
        return [Trial(r) for r in rows if (r[14] or 0) < now or owner_is_dead(r[12])]

    def take(self, conn, trial_id, owner, lease_s, now):
        conn.execute("UPDATE trials SET state = 'running', owner = ?, heartbeat = ?, "
                     "expires = ? WHERE id = ?", (owner, now, now + lease_s, trial_id))

    def insert_trial(self, conn, key, seed, cell, origin, candidate=None, parent_key=None,
                     state="pending"):
        cursor = conn.execute(
            "INSERT INTO trials (key, seed, candidate, origin, parent_key, cell, state, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, seed, candidate, origin, parent_key, json.dumps(cell), state, time.time()))
        return cursor.lastrowid

    def renew(self, trial_id, owner, lease_s):
        """Extends our lease; False when the trial is no longer ours."""
        now = time.time()
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE trials SET heartbeat = ?, expires = ? WHERE id = ? AND owner = ? "
                "AND state = 'running'", (now, now + lease_s, trial_id, owner))
            return cursor.rowcount == 1

    def finish(self, trial_id, owner, state, score=None, result=None, error=None):
        """Records the outcome of a trial we hold; False (nothing written) if we lost
        its lease to another worker meanwhile."""
        assert state in FINISHED
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE trials SET state = ?, score = ?, result = ?, error = ?, owner = NULL, "
                "expires = NULL, finished = ? WHERE id = ? AND owner = ? AND state = 'running'",
                (state, score, json.dumps(result) if result is not None else None, error,
                 time.time(), trial_id, owner))
            return cursor.rowcount == 1

    def release(self, trial_id, owner):
        """Gives back a trial we hold (stopped by bad input, not by the trial): pending
        again, no crash counted."""
        with self.transaction() as conn:
            conn.execute("UPDATE trials SET state = 'pending', owner = NULL, expires = NULL "
                         "WHERE id = ? AND owner = ? AND state = 'running'", (trial_id, owner))

    def crashed(self, trial_id, owner, error):
        """A trial raised (not a divergence): back to pending once, then failed.
        Returns the new state, or None if we no longer held it."""
        with self.transaction() as conn:
            return self._crash(conn, trial_id, owner, error)

    def process_died(self, pid, error):
        """A worker process of this host died (the parent saw it exit by a signal, as
        the kernel's out-of-memory killer does): its running trials count as crashed,
        so a trial that kills every worker that takes it ends failed, not retried for
        good. Returns [(trial id, new state)]."""
        prefix = f"{socket.gethostname()}:{int(pid)}:"
        with self.transaction() as conn:
            rows = conn.execute("SELECT id, owner FROM trials WHERE state = 'running' AND "
                                "substr(owner, 1, ?) = ?", (len(prefix), prefix)).fetchall()
            return [(trial_id, self._crash(conn, trial_id, owner, error))
                    for trial_id, owner in rows]

    @staticmethod
    def _crash(conn, trial_id, owner, error):
        row = conn.execute("SELECT crashes FROM trials WHERE id = ? AND owner = ? AND "
                           "state = 'running'", (trial_id, owner)).fetchone()
        if row is None:
            return None
        crashes = row[0] + 1
        state = "failed" if crashes >= MAX_CRASHES else "pending"
        conn.execute("UPDATE trials SET crashes = ?, error = ? WHERE id = ?",
                     (crashes, error, trial_id))
        conn.execute(
            "UPDATE trials SET state = ?, owner = NULL, expires = NULL, finished = ? "
            "WHERE id = ?", (state, time.time() if state == "failed" else None, trial_id))
        return state


def _get(d, dotted):
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d
