"""`PgVectorResource`: the Dagster resource over `PgVectorClient`, which keeps collections' pgvector tables.

Shaped like OllamaResource: typed config, a client (one connection) made in `setup_for_execution` and closed
in `teardown_after_execution`. The SQL lives in orca_resources/pgvector_sync.py, imported only when a client
is made, so loading this module (the purge job does) never imports psycopg2.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:
    from orca_resources.pgvector_sync import Drift, SyncResult


class PgVectorClient:
    """One connection to the database, and the operations on a collection's table."""

    def __init__(self, url: str, schema: str):
        from orca_resources import pgvector_sync  # psycopg2 only when a database is actually used

        self._sql = pgvector_sync
        self.schema = schema
        self.conn = pgvector_sync.connect(url)

    def sync(self, collection: str, index_path: Path, log: Callable[[str], None] = lambda _: None) -> SyncResult:
        return self._sql.sync(self.conn, self.schema, collection, index_path, log)

    def drift(self, collection: str, index_path: Path) -> Drift:
        return self._sql.drift(self.conn, self.schema, collection, index_path)

    def drop(self, collection: str) -> bool:
        return self._sql.drop(self.conn, self.schema, collection)

    def close(self) -> None:
        self.conn.close()


class PgVectorResource(dg.ConfigurableResource):
    """PostgreSQL with the `vector` extension, holding one table per collection in `schema_name`.

    (`schema_name`, not `schema`: pydantic models already have a `schema` attribute.)
    """

    url: str = Field(description="PostgreSQL URL (ORCA_PGVECTOR_URL), e.g. postgresql://user:pass@host/db.")
    schema_name: str = Field("orca", description="Schema of the collections' tables (ORCA_PGVECTOR_SCHEMA).")

    _client: PgVectorClient | None = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.client()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def client(self) -> PgVectorClient:
        """The client every call goes through: made in `setup_for_execution`, or on first use outside a run."""
        with self._lock:
            if self._client is None:
                self._client = PgVectorClient(self.url, self.schema_name)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
