"""One writer per collection across machines: `collection_lock(...)`, the lock every writing step holds.

Where the Dagster instance is PostgreSQL, runs may execute on any machine (containers, Kubernetes Jobs), so
the lock lives in that database: a session-level advisory lock (`pg_advisory_lock`) keyed by the collection,
held on a connection of its own for as long as the step writes. PostgreSQL releases it when that session
ends, so a holder killed by SIGKILL or OOM leaves no stale lock: its socket closes and the lock is free at
once. A holder whose machine vanishes without closing the socket is noticed by the server's TCP keepalives
(`tcp_keepalives_idle` and friends in postgresql.conf; the client side sets its own below, so a waiter whose
server vanished fails instead of hanging).

With a SQLite instance everything runs on one machine, and the folder lock (`orca_core/folder_lock.py`) does
the same job without a server. The key space is Orca's own: the first 8 bytes of a BLAKE2b digest of
`orca/collection/<name>`, so it cannot collide with Dagster's own locks in the same database (Dagster uses
none) except by a 2^-64 chance.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from orca_core.folder_lock import folder_lock

POLL_SECONDS = 0.25
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def lock_key(collection: str) -> int:
    """The signed 64-bit advisory-lock key of `collection`."""
    digest = hashlib.blake2b(f"orca/collection/{collection}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def instance_postgres_url(instance: object) -> str | None:
    """The PostgreSQL URL of a Dagster instance's run storage, or None when it is not PostgreSQL."""
    storage = getattr(instance, "run_storage", None)
    url = getattr(storage, "postgres_url", None)
    return url if isinstance(url, str) and url else None


@contextlib.contextmanager
def collection_lock(
    folder: Path, collection: str, *, postgres_url: str | None = None, on_wait: Callable[[str], None] | None = None
) -> Iterator[float]:
    """Hold `collection`'s writer lock (advisory in PostgreSQL when `postgres_url` is given, else the lock of
    its warehouse `folder`); yields the seconds waited. `on_wait` is told once when another holder makes it wait."""
    if not postgres_url:
        with folder_lock(folder, on_wait=on_wait) as waited:
            yield waited
        return
    with _advisory_lock(postgres_url, collection, on_wait) as waited:
        yield waited


_local_holders: dict[int, threading.Lock] = {}
_local_guard = threading.Lock()


@contextlib.contextmanager
def _advisory_lock(url: str, collection: str, on_wait: Callable[[str], None] | None) -> Iterator[float]:
    import psycopg2  # only with a PostgreSQL instance

    key = lock_key(collection)
    started = time.monotonic()
    with _local_guard:
        local = _local_holders.setdefault(key, threading.Lock())
    told = False
    if not local.acquire(blocking=False):  # advisory locks are per session: keep this process's threads apart
        on_wait and on_wait(f"another step of this process is writing {collection}; waiting for it")
        told = True
        local.acquire()
    try:
        conn = psycopg2.connect(_dsn(url), application_name=f"orca lock {collection}"[:63], **KEEPALIVE)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                while True:
                    cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                    if cursor.fetchone()[0]:
                        break
                    if not told and on_wait:
                        on_wait(f"another run is writing {collection}; waiting for its step to finish")
                        told = True
                    time.sleep(POLL_SECONDS)
                try:
                    yield time.monotonic() - started
                finally:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
        finally:
            conn.close()
    finally:
        local.release()


def _dsn(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (`postgresql+psycopg2://...` -> `postgresql://...`)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}" if sep else url
