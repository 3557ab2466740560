"""An exclusive lock on a folder, held by one thread of one process at a time: `folder_lock(folder)`.

It guards a collection's warehouse folder while an asset step writes it (orca_assets/writer_lock.py) and
DAGSTER_HOME while a command opens (and perhaps creates) the instance's SQLite storage (orca/home.py). The
lock is the file `.orca.lock` in the folder.

`flock` on a freshly opened file excludes other processes and other threads alike; over NFS, Linux emulates
it with POSIX record locks, which are per process, so a per-path thread lock keeps threads apart there too.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from orca_core.layout import LOCK_FILE

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(str(path), threading.Lock())


@contextlib.contextmanager
def folder_lock(folder: Path, *, on_wait: Callable[[str], None] | None = None) -> Iterator[float]:
    """Hold the exclusive lock of `folder` (created when missing); yields the seconds waited for it.

    `on_wait` is told once when another holder makes this one wait, so a run's log says why it stalls.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    started = time.monotonic()
    told = False
    local = _thread_lock(path)
    if not local.acquire(blocking=False):
        on_wait and on_wait(f"another step of this process is writing {folder.name}; waiting for it")
        told = True
        local.acquire()
    try:
        # "a" never truncates, so opening it cannot disturb a holder; the file's content is irrelevant.
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not told and on_wait:
                    on_wait(f"another run is writing {folder.name}; waiting for its step to finish")
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield time.monotonic() - started
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        local.release()
