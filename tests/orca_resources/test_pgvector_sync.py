"""orca_resources/pgvector_sync.py on hand-written index files, against a real PostgreSQL with pgvector."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orca_assets.index import INDEX_SCHEMA
from orca_assets.pgvector_table import drift_check_result
from orca_resources.pgvector import PgVectorResource


def write_index(
    path: Path, n: int, dims: int = 8, model: str = "m1", edit: frozenset[int] = frozenset(), seed: int = 0
) -> None:
    """An index of n chunks (2 per document) in the contract's schema; rows in `edit` get another text."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = {
        "chunk_id": [f"c{i:06d}" for i in range(n)],
        "doc_id": [f"dir/doc {i // 2}.md" for i in range(n)],
        "chunk_index": [i % 2 for i in range(n)],
        "text": [("edited\ttext\\ with\nnewline " if i in edit else "text ") + str(i) for i in range(n)],
        "embedding": list(vectors),
        "model": [model] * n,
        "source": ["inbox"] * n,
        "page": [None if i % 3 else i for i in range(n)],
        "section": [None if i % 2 else "Install > Linux" for i in range(n)],
        "title": ["Guide"] * n,
        "metadata": [json.dumps({"team": "infra" if i % 2 else "data", "n": i}) if i % 5 else "{}" for i in range(n)],
    }
    schema = INDEX_SCHEMA.with_metadata({"orca.model": model, "orca.dimensions": str(dims)})
    pq.write_table(pa.table(rows, schema=schema), path)


@pytest.fixture
def client(pgvector_server_url, pg_schema):  # noqa: F811
    resource = PgVectorResource(url=pgvector_server_url, schema_name=pg_schema)
    yield resource.client()
    resource.close()


def count(client, sql: str) -> int:
    with client.conn, client.conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def test_a_one_percent_edit_upserts_one_percent(client, tmp_path):
    index = tmp_path / "index.parquet"
    write_index(index, 2000)
    started = time.perf_counter()
    first = client.sync("my-docs_1", index)
    print(f"first load (COPY) of 2000x8: {time.perf_counter() - started:.3f}s")
    assert (first.created, first.rows, first.upserted) == (True, 2000, 2000)
    assert client.sync("my-docs_1", index).upserted == 0
    edited = frozenset(range(0, 2000, 100))  # 20 rows, 1%
    write_index(index, 2000, edit=edited)
    result = client.sync("my-docs_1", index)
    assert (result.upserted, result.deleted, result.rebuilt) == (20, 0, False)
    table = f'{client.schema}."my-docs_1"'
    assert count(client, f"SELECT count(*) FROM {table} WHERE text LIKE 'edited%'") == 20
    assert count(client, f"SELECT count(*) FROM {table} WHERE text = E'edited\\ttext\\\\ with\\nnewline 100'") == 1
    assert count(client, f"""SELECT count(*) FROM {table} WHERE metadata @> '{{"team": "infra"}}'""") == 800
    assert count(client, f"SELECT count(*) FROM {table} WHERE page IS NULL AND section IS NULL") > 0


def test_vectors_round_trip_exactly(client, tmp_path):
    index = tmp_path / "index.parquet"
    write_index(index, 10, dims=5)
    client.sync("exact", index)
    with client.conn, client.conn.cursor() as cur:
        cur.execute(f"SELECT chunk_id, embedding::text FROM {client.schema}.exact ORDER BY chunk_id")
        stored = [np.array(json.loads(v), dtype=np.float32) for _, v in cur.fetchall()]
    expected = np.stack(pq.read_table(index)["embedding"].to_pylist()).astype(np.float32)
    assert np.array_equal(np.stack(stored), expected)


def test_drift_fails_on_a_damaged_table_and_passes_after_repair(client, tmp_path):
    index = tmp_path / "index.parquet"
    write_index(index, 50)
    client.sync("docs", index)
    assert client.drift("docs", index).matches
    with client.conn, client.conn.cursor() as cur:
        cur.execute(f"DELETE FROM {client.schema}.docs WHERE chunk_id IN ('c000003', 'c000004')")
    damaged = client.drift("docs", index)
    assert (damaged.matches, damaged.rows, damaged.index_rows) == (False, 48, 50)
    verdict = drift_check_result(damaged)
    assert not verdict.passed and verdict.metadata["checksum_match"].value is False
    # Same count, other ids: the checksum still tells.
    with client.conn, client.conn.cursor() as cur:
        cur.execute(f"INSERT INTO {client.schema}.docs SELECT 'zz' || chunk_id, doc_id, chunk_index, text, embedding, "
                    f"model, source, page, section, title, metadata FROM {client.schema}.docs LIMIT 2")
    assert client.drift("docs", index).rows == 50 and not client.drift("docs", index).matches
    assert (client.sync("docs", index).upserted, client.drift("docs", index).matches) == (2, True)
    assert drift_check_result(client.drift("docs", index)).passed


def test_a_model_change_swaps_and_a_long_name_keeps_its_indexes(client, tmp_path):
    index, name = tmp_path / "index.parquet", "a" * 63
    write_index(index, 30, dims=8, model="m1")
    client.sync(name, index)
    write_index(index, 30, dims=8, model="m2", seed=1)
    result = client.sync(name, index)
    assert result.rebuilt and (result.upserted, result.deleted) == (30, 30)
    with client.conn, client.conn.cursor() as cur:
        cur.execute(f'SELECT DISTINCT model FROM {client.schema}."{name}"')
        assert cur.fetchall() == [("m2",)]
        cur.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = %s", (client.schema,))
        assert cur.fetchone()[0] == 4
    assert client.sync(name, index).upserted == 0  # the swapped table is the one kept in sync afterwards
    assert client.drop(name) and not client.drop(name)


@pytest.mark.parametrize("rows,dims", [(5_000, 384)])
def test_copy_throughput(client, tmp_path, rows, dims):
    """Not a benchmark gate, a measurement printed with -s; it must merely finish."""
    index = tmp_path / "index.parquet"
    write_index(index, rows, dims=dims)
    started = time.perf_counter()
    client.sync("big", index)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    assert client.sync("big", index).upserted == 0
    unchanged = time.perf_counter() - started
    print(f"\nCOPY first load {rows}x{dims}: {loaded:.2f}s; unchanged incremental run: {unchanged:.2f}s")
