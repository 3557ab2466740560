"""One writer per collection: each asset step holds an exclusive lock on its collection while it runs.

The run queue already keeps two queued runs of one collection apart (the `dagster/partition` tag limit in
dagster.yaml), but `orca materialize` executes in its own process, outside the queue, and nothing stops a
second Orca on another machine from writing the same warehouse. So the write path protects itself: every
step of `embed_collection_job` reads its inputs and publishes its output under
`warehouse/<collection>/.orca.lock`. Steps of two runs then follow one another instead of interleaving
inside a step, and because each step is a pure function of what it reads, the last run to finish leaves an
index that matches the inbox as it last read it.

`flock` on a freshly opened file excludes other processes and other threads alike; over NFS, Linux emulates
it with POSIX record locks, which are per process, so a per-path thread lock keeps threads apart there too.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

LOCK_FILE = ".orca.lock"

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(str(path), threading.Lock())


@contextlib.contextmanager
def collection_lock(folder: Path, *, on_wait: Callable[[str], None] | None = None) -> Iterator[float]:
    """Hold the exclusive lock of the collection whose warehouse folder is `folder`; yields seconds waited.

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


def one_writer_per_collection(compute: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an asset's compute function (below `@dg.asset`) so it runs under its collection's lock.

    The function must take `context` first and a `warehouse: WarehouseResource`; Dagster passes resources by
    name, and `functools.wraps` keeps the signature Dagster reads its parameters from.
    """

    @functools.wraps(compute)
    def locked(context, *args: Any, **kwargs: Any) -> Any:
        warehouse = kwargs["warehouse"]
        folder = warehouse.collection_dir(context.partition_key)
        with collection_lock(folder, on_wait=context.log.info) as waited:
            if waited >= 1:
                context.log.info(f"waited {waited:.1f}s for {context.partition_key}'s lock")
            return compute(context, *args, **kwargs)

    return locked
