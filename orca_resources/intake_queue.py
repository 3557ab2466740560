"""The intake queue: requests the REST intake accepted, waiting for (or followed through) Dagster runs.

A table reached through SQLAlchemy Core: SQLite in WAL mode under ORCA_HOME by default, any SQLAlchemy URL
(PostgreSQL) through `ORCA_INTAKE_DB_URL`. The intake writes rows; the sensors launch and follow runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

STATUSES = ("queued", "launched", "running", "succeeded", "failed", "canceled")
ACTIVE_STATUSES = ("launched", "running")
FINISHED_STATUSES = ("succeeded", "failed", "canceled")

metadata = sa.MetaData()
requests_table = sa.Table(
    "intake_requests",
    metadata,
    sa.Column("request_id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),  # documents, delete, embed, reindex
    sa.Column("collection", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False, default="{}"),
    sa.Column("status", sa.String(16), nullable=False, default="queued"),
    sa.Column("run_id", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("counts", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("launched_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Index("ix_intake_requests_status_created", "status", "created_at"),
    sa.Index("ix_intake_requests_run_id", "run_id"),
)


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class IntakeRequest:
    """One row of the queue, decoded."""

    request_id: str
    kind: str
    collection: str
    status: str
    created_at: datetime
    updated_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    error: str | None = None
    counts: dict[str, Any] | None = None
    launched_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def from_row(cls, row: sa.Row) -> IntakeRequest:
        values = dict(row._mapping)
        values["payload"] = json.loads(values["payload"] or "{}")
        values["counts"] = json.loads(values["counts"]) if values["counts"] else None
        for key in ("created_at", "updated_at", "launched_at", "finished_at"):
            if values[key] is not None and values[key].tzinfo is None:
                values[key] = values[key].replace(tzinfo=timezone.utc)  # SQLite drops the zone
        return cls(**values)


class IntakeQueue:
    """Typed access to the queue table; safe to share between threads (one engine, short transactions)."""

    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def enqueue(
        self, kind: str, collection: str, payload: dict[str, Any] | None = None, *, request_id: str | None = None
    ) -> IntakeRequest:
        """Commit a new queued request; once this returns, the request survives a crash.

        `request_id` lets a caller name the request before committing it (the intake writes it into the
        documents' source records first); by default a new uuid4 hex.
        """
        return self.enqueue_many([(kind, collection, payload, request_id)])[0]

    def enqueue_many(
        self, requests: Iterable[tuple[str, str, dict[str, Any] | None, str | None]]
    ) -> list[IntakeRequest]:
        """Commit several queued requests `(kind, collection, payload, request_id)` in one transaction.

        One commit (one WAL fsync with SQLite) for all: the intake's group commit queues every request of a
        group this way. All or none of them survive a crash.
        """
        stamp = now()
        requests = list(requests)
        rows = [
            {
                "request_id": request_id or uuid.uuid4().hex,
                "kind": kind,
                "collection": collection,
                "payload": json.dumps(payload or {}, ensure_ascii=False),
                "status": "queued",
                "created_at": stamp,
                "updated_at": stamp,
            }
            for kind, collection, payload, request_id in requests
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(requests_table.insert(), rows)
        return [IntakeRequest(**{**row, "payload": request[2] or {}}) for row, request in zip(rows, requests)]

    def get(self, request_id: str) -> IntakeRequest | None:
        with self.engine.connect() as conn:
            row = conn.execute(requests_table.select().where(requests_table.c.request_id == request_id)).first()
        return IntakeRequest.from_row(row) if row else None

    def with_status(self, statuses: Iterable[str], limit: int = 500) -> list[IntakeRequest]:
        """Requests in any of `statuses`, oldest first."""
        query = (
            requests_table.select()
            .where(requests_table.c.status.in_(list(statuses)))
            .order_by(requests_table.c.created_at, requests_table.c.request_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [IntakeRequest.from_row(row) for row in conn.execute(query)]

    def page(
        self,
        *,
        collection: str | None = None,
        statuses: Iterable[str] | None = None,
        limit: int = 50,
        before: tuple[datetime, str] | None = None,
    ) -> list[IntakeRequest]:
        """Requests newest first, of one collection and in some statuses when given, starting after `before`:
        the `(created_at, request_id)` of the previous page's last row (a group committed together shares its
        time stamp, so the id breaks ties)."""
        table = requests_table
        query = table.select()
        if collection is not None:
            query = query.where(table.c.collection == collection)
        if statuses is not None:
            query = query.where(table.c.status.in_(list(statuses)))
        if before is not None:
            stamp, request_id = before
            query = query.where(
                sa.or_(table.c.created_at < stamp, sa.and_(table.c.created_at == stamp, table.c.request_id < request_id))
            )
        query = query.order_by(table.c.created_at.desc(), table.c.request_id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [IntakeRequest.from_row(row) for row in conn.execute(query)]

    def cancel_queued(self, request_id: str) -> bool:
        """Move a request that is still `queued` to `canceled`, so the intake sensor never launches it; False
        when it had left the queue (the sensor took it, or it ended)."""
        values = status_values("canceled", error="canceled through the intake before it was launched")
        statement = (
            requests_table.update()
            .where(requests_table.c.request_id == request_id, requests_table.c.status == "queued")
            .values(**values)
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def mark_launched(self, request_ids: Iterable[str], run_id: str) -> None:
        stamp = now()
        with self.engine.begin() as conn:
            conn.execute(
                requests_table.update()
                .where(requests_table.c.request_id.in_(list(request_ids)), requests_table.c.status == "queued")
                .values(status="launched", run_id=run_id, launched_at=stamp, updated_at=stamp)
            )

    def record_run(
        self,
        request_ids: Iterable[str],
        status: str,
        run_id: str,
        *,
        error: str | None = None,
        counts: dict[str, Any] | None = None,
    ) -> int:
        """Attach `run_id` and move unfinished requests to `status`; rows already there are left untouched
        (so a tick that sees no progress writes nothing). Returns how many rows changed."""
        table = requests_table
        values = {**status_values(status, error=error, counts=counts), "run_id": run_id}
        statement = (
            table.update()
            .where(
                table.c.request_id.in_(list(request_ids)),
                table.c.status.not_in(FINISHED_STATUSES),
                sa.or_(table.c.status != status, table.c.run_id.is_(None), table.c.run_id != run_id),
            )
            .values(**values)
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount

    def set_status(
        self,
        request_ids: Iterable[str],
        status: str,
        *,
        error: str | None = None,
        counts: dict[str, Any] | None = None,
    ) -> None:
        values = status_values(status, error=error, counts=counts)
        with self.engine.begin() as conn:
            conn.execute(
                requests_table.update()
                .where(
                    requests_table.c.request_id.in_(list(request_ids)),
                    requests_table.c.status.not_in(FINISHED_STATUSES),
                )
                .values(**values)
            )

    def last_finished(self, collections: Iterable[str] | None = None) -> dict[str, IntakeRequest]:
        """The most recently finished request of each collection (all collections when None)."""
        newest = sa.select(
            requests_table.c.collection, sa.func.max(requests_table.c.finished_at).label("finished_at")
        ).where(requests_table.c.status.in_(FINISHED_STATUSES))
        if collections is not None:
            newest = newest.where(requests_table.c.collection.in_(list(collections)))
        newest = newest.group_by(requests_table.c.collection).subquery()
        query = requests_table.select().join(
            newest,
            sa.and_(
                requests_table.c.collection == newest.c.collection,
                requests_table.c.finished_at == newest.c.finished_at,
            ),
        ).where(requests_table.c.status.in_(FINISHED_STATUSES))
        found: dict[str, IntakeRequest] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                found.setdefault(row.collection, IntakeRequest.from_row(row))
        return found

    def depth_by_status(self) -> dict[str, int]:
        query = sa.select(requests_table.c.status, sa.func.count()).group_by(requests_table.c.status)
        with self.engine.connect() as conn:
            counted = dict(conn.execute(query).all())
        return {status: int(counted.get(status, 0)) for status in STATUSES}

    def ping(self) -> None:
        """Raise unless the store answers and accepts writes (used by the intake's readiness probe)."""
        with self.engine.begin() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(requests_table))
            conn.execute(
                requests_table.update().where(requests_table.c.request_id == "").values(updated_at=now())
            )


def status_values(status: str, *, error: str | None = None, counts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The columns a move to `status` writes: the status, its time stamps, and the error or counts when given."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    stamp = now()
    values: dict[str, Any] = {"status": status, "updated_at": stamp}
    if status in FINISHED_STATUSES:
        values["finished_at"] = stamp
    if error is not None:
        values["error"] = error
    if counts is not None:
        values["counts"] = json.dumps(counts)
    return values


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the intake write while sensors read; FULL sync keeps a 202-acknowledged request through power loss.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
