"""Progress of long jobs, the same way in every binary.

On a terminal, a tqdm bar on stderr; into a pipe or a log file, a line on
stdout about every tenth of the work (and at the end), so that stderr holds
only warnings and the one `error:` line a failing binary prints.
"""
import os
import signal
import sys
import threading
import time

# Test hook: `DEEPLAB_DPC_KILL_AFTER="writing:3"` SIGKILLs the process when the
# progress named "writing" reaches 3 (or any other `kill_point` its count), so tests
# can kill a job at a chosen moment. Read at each call: a search's workers inherit it.


def kill_point(name, count):
    """SIGKILLs this process if the test hook names `name:count`."""
    if os.environ.get("DEEPLAB_DPC_KILL_AFTER", "") == f"{name}:{count}":
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


class Progress:
    """`update(n)` as work is done (thread-safe); `close()` at the end.

    `total` may be None (unknown): lines then come every `every` items.
    """

    def __init__(self, total, desc, unit="images", every=None, enabled=True):
        self.total, self.desc, self.unit = total, desc, unit
        self.done, self._start, self._lock = 0, time.time(), threading.Lock()
        self._every = every or max(1, (total or 1000) // 10)
        self._last_line, self._bar, self._enabled = 0, None, enabled
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit[:-1] if unit.endswith("s")
                             else unit, file=sys.stderr)

    def rate(self):
        return self.done / max(time.time() - self._start, 1e-9)

    def _line(self):
        print(f"  {self.desc}: {self.done}/{self.total or '?'} {self.unit} "
              f"({self.rate():.1f} {self.unit}/s)", flush=True)
        self._last_line = self.done

    def update(self, n=1):
        with self._lock:
            self.done += n
            kill_point(self.desc, self.done)
            if self._bar is not None:
                self._bar.update(n)
            elif self._enabled and (self.done // self._every > self._last_line // self._every
                                    or self.done == self.total):
                self._line()

    def note(self, line):
        """A line for the log (on a terminal, printed above the bar)."""
        if self._enabled:
            with self._lock:
                if self._bar is not None:
                    self._bar.write(line, file=sys.stderr)
                else:
                    print(line, flush=True)

    def close(self):
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            elif self._enabled and self.done != self._last_line:
                self._line()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
