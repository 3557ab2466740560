"""The intake queue as a Dagster resource for the sensors, with the few queries only the sensors need.

The queue is opened on first use inside a sensor evaluation, never at import time, and closed when the
evaluation ends; `ORCA_INTAKE_DB_URL` (or, when unset, the SQLite file under ORCA_HOME) names it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Optional

import dagster as dg
import sqlalchemy as sa
from pydantic import PrivateAttr

from orca_core.layout import LocalLayout
from orca_resources.intake_queue import IntakeQueue, IntakeRequest, now, requests_table

ACTIVE = ("launched", "running")


class SensorQueue(IntakeQueue):
    """`IntakeQueue` plus the paging and run bookkeeping the sensors do; every write is one short transaction."""

    def active_page(self, limit: int, after: tuple[datetime, str] | None = None) -> list[IntakeRequest]:
        """Launched or running requests, oldest first, starting after position `after` (created_at, id)."""
        table = requests_table
        query = table.select().where(table.c.status.in_(ACTIVE))
        if after is not None:
            stamp, request_id = after
            same_stamp_after = sa.and_(table.c.created_at == stamp, table.c.request_id > request_id)
            query = query.where(sa.or_(table.c.created_at > stamp, same_stamp_after))
        query = query.order_by(table.c.created_at, table.c.request_id).limit(limit)
        with self.engine.connect() as conn:
            return [IntakeRequest.from_row(row) for row in conn.execute(query)]

    def queued_collections(self, since: datetime) -> set[str]:
        """Collections with a request queued at or after `since` (older ones are presumed stuck)."""
        table = requests_table
        query = sa.select(table.c.collection).distinct().where(table.c.status == "queued", table.c.created_at >= since)
        with self.engine.connect() as conn:
            return {row[0] for row in conn.execute(query)}

    def requeue(self, request_ids: Iterable[str]) -> int:
        """Put launched requests that never got a run back in the queue, so the intake sensor launches them again."""
        table = requests_table
        statement = (
            table.update()
            .where(table.c.request_id.in_(list(request_ids)), table.c.status == "launched", table.c.run_id.is_(None))
            .values(status="queued", launched_at=None, updated_at=now())
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount


class IntakeQueueResource(dg.ConfigurableResource):
    """Where the intake queue lives: `url` (ORCA_INTAKE_DB_URL) or, when empty, the SQLite file under `home`."""

    url: str = ""
    home: str = ".orca"

    _queue: Optional[SensorQueue] = PrivateAttr(default=None)

    @property
    def resolved_url(self) -> str:
        return self.url or LocalLayout(Path(self.home).expanduser().resolve()).queue_url

    def queue(self) -> SensorQueue:
        """The queue, opened on first use (creating the SQLite file and table if the intake never ran)."""
        if self._queue is None:
            self._queue = SensorQueue(self.resolved_url)
        return self._queue

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._queue is not None:
            self._queue.close()
            self._queue = None
