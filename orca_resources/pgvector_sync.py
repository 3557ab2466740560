"""Keep one PostgreSQL table per collection equal to its served index (the Parquet file is the truth).

Plain functions over a psycopg2 connection, so the Dagster asset, the intake and the CLI can share them.

- First load: the table is created and filled by COPY (text format), one Parquet batch per COPY.
- Incremental: every index row is COPY'd into a temporary table, then compared column by column with the
  table *on the fly* (`IS DISTINCT FROM`, in SQL, no stored digest). Comparing what the table really holds,
  rather than a digest written at load time, is what makes a hand edit (a text changed in SQL) visible to the
  next run. Only rows that differ are upserted; rows that left the index are deleted; one transaction.
- Another model or dimension: `<name>__new` is built beside the table, loaded by COPY, and swapped in within
  one transaction, so no reader sees vectors of two models in one table.
- Drift: row count and md5 of the sorted chunk ids, computed in SQL and in Python (`drift`).

Cost to know: the incremental path stages the whole index every run (COPY is cheap next to embedding, but it
is O(index), not O(change)); the writes it makes are O(change).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg2 import sql

from orca_resources.warehouse import open_parquet

COPY_BATCH_ROWS = 8192
MAX_IDENTIFIER = 63  # PostgreSQL truncates longer names silently; we shorten them ourselves, predictably
# The columns an index row fills, in COPY order (`updated_at` is set by the database).
COLUMNS = ["chunk_id", "doc_id", "chunk_index", "text", "embedding", "model", "source", "page", "section", "title",
           "metadata"]
HNSW_BUILD_MEMORY = "1GB"  # a million vectors of 768 dimensions need about 3 GB; past it the build goes on, slower
COMPARED = [column for column in COLUMNS if column != "chunk_id"]
Log = Callable[[str], None]


@dataclass(frozen=True)
class SyncResult:
    table: str
    rows: int
    upserted: int
    deleted: int
    rebuilt: bool
    created: bool


@dataclass(frozen=True)
class Drift:
    rows: int  # rows the table holds
    index_rows: int
    checksum: str  # md5 of the table's sorted chunk ids
    index_checksum: str

    @property
    def matches(self) -> bool:
        return self.rows == self.index_rows and self.checksum == self.index_checksum


def connect(url: str) -> psycopg2.extensions.connection:
    return psycopg2.connect(url, application_name="orca-pgvector")


def object_name(base: str, suffix: str = "") -> str:
    """`base + suffix`, shortened with a hash when longer than PostgreSQL keeps (63 bytes)."""
    name = base + suffix
    if len(name.encode()) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.md5(base.encode()).hexdigest()[:8]
    return f"{base[: MAX_IDENTIFIER - len(suffix) - 9]}_{digest}{suffix}"


def _index_names(table: str) -> dict[str, str]:
    return {kind: object_name(table, f"_{kind}") for kind in ("embedding_hnsw", "doc_id", "metadata_gin")}


def _ident(schema: str, table: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def index_identity(index_path: Path) -> tuple[str, int, int]:
    """(model, dimensions, rows) of a served index, from its footer."""
    meta = pq.read_metadata(index_path)
    fields = {key.decode(): value.decode() for key, value in (meta.schema.to_arrow_schema().metadata or {}).items()}
    return fields["orca.model"], int(fields["orca.dimensions"]), meta.num_rows


def _table_identity(cur, schema: str, table: str) -> tuple[int, set[str]] | None:
    """(vector dimension, models present) of the table, or None when it does not exist."""
    cur.execute(
        "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s "
        "AND a.attname = 'embedding' AND NOT a.attisdropped", (schema, table),
    )
    found = cur.fetchone()
    if found is None:
        return None
    dimension = int(found[0].split("(")[1].rstrip(")")) if "(" in found[0] else -1
    cur.execute(sql.SQL("SELECT DISTINCT model FROM {}").format(_ident(schema, table)))
    return dimension, {model for (model,) in cur.fetchall()}


def _create_table(cur, schema: str, table: str, dimension: int) -> None:
    """The table and its primary key, named after the table (a swap renames them)."""
    target = _ident(schema, table)
    cur.execute(sql.SQL(
        "CREATE TABLE {} (chunk_id text CONSTRAINT {} PRIMARY KEY, doc_id text NOT NULL, chunk_index int NOT NULL, "
        "text text, embedding vector({}) NOT NULL, model text NOT NULL, source text, page int, section text, "
        "title text, metadata jsonb NOT NULL DEFAULT '{{}}', updated_at timestamptz NOT NULL DEFAULT now())"
    ).format(target, sql.Identifier(object_name(table, "_pkey")), sql.Literal(dimension)))


def _create_indexes(cur, schema: str, table: str) -> None:
    """HNSW, doc_id and metadata indexes, made after the COPY: one bulk HNSW build is far faster than
    growing the graph row by row."""
    target = _ident(schema, table)
    names = _index_names(table)
    # pgvector builds the graph in maintenance_work_mem and slows down many times once it no longer fits
    # (the default 64 MB holds about 20,000 vectors of 768 dimensions); for this transaction only.
    cur.execute(f"SET LOCAL maintenance_work_mem = '{HNSW_BUILD_MEMORY}'")
    cur.execute(sql.SQL("CREATE INDEX {} ON {} USING hnsw (embedding vector_cosine_ops)").format(
        sql.Identifier(names["embedding_hnsw"]), target))
    cur.execute(sql.SQL("CREATE INDEX {} ON {} (doc_id)").format(sql.Identifier(names["doc_id"]), target))
    cur.execute(sql.SQL("CREATE INDEX {} ON {} USING gin (metadata)").format(
        sql.Identifier(names["metadata_gin"]), target))


def _text_column(array: pa.Array) -> pa.Array:
    r"""A column in COPY's text format: `\N` for null; backslash, tab and line breaks escaped."""
    strings = pc.cast(array, pa.string())
    for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        strings = pc.replace_substring(strings, raw, escaped)
    return pc.fill_null(strings, "\\N")


def _vector_column(vectors: pa.Array) -> pa.Array:
    """`[x,y,...]` per row, formatted by Arrow (vectorised; shortest float32 text, which parses back exactly)."""
    if pc.all(pc.is_finite(pc.list_flatten(vectors))).as_py() is False:  # None: no values at all
        raise ValueError("a vector holds NaN or infinity, which pgvector refuses")
    joined = pc.binary_join(pc.cast(vectors, pa.list_(pa.string())), ",")
    return pc.binary_join_element_wise("[", joined, "]", "")


def _copy_text(batch: pa.RecordBatch) -> io.StringIO:
    columns = []
    for name in COLUMNS:
        array = batch.column(name)
        if name == "embedding":
            columns.append(_vector_column(array))
        elif name == "metadata":  # `{}` when none, as the index promises
            columns.append(_text_column(pc.if_else(pc.equal(pc.fill_null(array, ""), ""), "{}", array)))
        else:
            columns.append(_text_column(array))
    lines = pc.binary_join_element_wise(*columns, "\t").to_pylist()
    return io.StringIO("\n".join(lines) + "\n" if lines else "")


def copy_index(cur, index_path: Path, schema: str, table: str, log: Log, temporary: bool = False) -> int:
    """COPY every index row into `table`, a Parquet batch at a time; rows copied."""
    target = sql.Identifier(table) if temporary else _ident(schema, table)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        target, sql.SQL(", ").join(map(sql.Identifier, COLUMNS))).as_string(cur)
    copied = 0
    with open_parquet(index_path) as parquet:  # read row group by row group, never buffered whole
        if parquet is None:
            raise FileNotFoundError(index_path)
        for batch in parquet.iter_batches(batch_size=COPY_BATCH_ROWS, columns=COLUMNS):
            cur.copy_expert(statement, _copy_text(batch))
            copied += batch.num_rows
            log(f"copied {copied} rows into {'staging' if temporary else f'{schema}.{table}'}")
    return copied


def _upsert_changed(cur, schema: str, table: str) -> tuple[int, int]:
    """Apply the staged rows: delete what left, upsert what is new or differs. (upserted, deleted)."""
    target = _ident(schema, table)
    cur.execute(sql.SQL(
        "DELETE FROM {} t WHERE NOT EXISTS (SELECT 1 FROM orca_stage s WHERE s.chunk_id = t.chunk_id)"
    ).format(target))
    deleted = cur.rowcount
    listed = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    differs = sql.SQL(" OR ").join(
        sql.SQL("t.{0} IS DISTINCT FROM s.{0}").format(sql.Identifier(column)) for column in COMPARED)
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(column)) for column in COMPARED)
    cur.execute(sql.SQL(
        "INSERT INTO {target} ({listed}) SELECT {picked} FROM orca_stage s LEFT JOIN {target} t "
        "ON t.chunk_id = s.chunk_id WHERE t.chunk_id IS NULL OR {differs} "
        "ON CONFLICT (chunk_id) DO UPDATE SET {updates}, updated_at = now()"
    ).format(target=target, listed=listed, differs=differs, updates=updates,
             picked=sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in COLUMNS)))
    return cur.rowcount, deleted


def _swap(cur, schema: str, table: str, new: str) -> None:
    """Drop `table`, rename `new` to it and its indexes to the table's names (inside the caller's transaction)."""
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_ident(schema, table)))
    cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(_ident(schema, new), sql.Identifier(table)))
    for kind, name in _index_names(new).items():
        cur.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
            _ident(schema, name), sql.Identifier(_index_names(table)[kind])))
    cur.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
        _ident(schema, table), sql.Identifier(object_name(new, "_pkey")), sql.Identifier(object_name(table, "_pkey"))))


def ensure_schema(conn, schema: str) -> None:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
        if cur.fetchone() is None:
            # Needs the right to create extensions; when missing, the error says what to ask the DBA for.
            cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
        cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        if cur.fetchone() is None:  # asked only when missing: a role may own its schema without CREATE on the db
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def sync(conn, schema: str, table: str, index_path: Path, log: Log = lambda _: None) -> SyncResult:
    """Bring `schema.table` to exactly the rows of the index at `index_path`, in one transaction."""
    ensure_schema(conn, schema)
    model, dimension, rows = index_identity(index_path)
    with conn, conn.cursor() as cur:
        # Two writers of one table (two Orca installs on one database) take turns instead of interleaving.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"orca-pgvector:{schema}.{table}",))
        held = _table_identity(cur, schema, table)
        if held is None:
            _create_table(cur, schema, table, dimension)
            copy_index(cur, index_path, schema, table, log)
            _create_indexes(cur, schema, table)
            return SyncResult(f"{schema}.{table}", rows, rows, 0, rebuilt=False, created=True)
        held_dimension, held_models = held
        if held_dimension != dimension or not held_models <= {model}:
            log(f"{schema}.{table} holds {sorted(held_models)} ({held_dimension} dims), the index {model} "
                f"({dimension} dims): building it anew beside it")
            new = object_name(table, "__new")
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_ident(schema, new)))
            _create_table(cur, schema, new, dimension)
            copy_index(cur, index_path, schema, new, log)
            _create_indexes(cur, schema, new)
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident(schema, table)))
            (old_rows,) = cur.fetchone()
            _swap(cur, schema, table, new)
            return SyncResult(f"{schema}.{table}", rows, rows, old_rows, rebuilt=True, created=False)
        cur.execute(sql.SQL("CREATE TEMP TABLE orca_stage (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
            _ident(schema, table)))
        copy_index(cur, index_path, schema, "orca_stage", log, temporary=True)
        upserted, deleted = _upsert_changed(cur, schema, table)
        return SyncResult(f"{schema}.{table}", rows, upserted, deleted, rebuilt=False, created=False)


def ids_checksum(ids: list[str]) -> str:
    """md5 of the ids sorted by code point, newline-joined: the same as `drift` computes in SQL."""
    return hashlib.md5("\n".join(sorted(ids)).encode()).hexdigest()


def drift(conn, schema: str, table: str, index_path: Path) -> Drift:
    """What the table holds against the index: row counts and checksums of the chunk ids."""
    ids = pq.read_table(index_path, columns=["chunk_id"])["chunk_id"].to_pylist()
    with conn, conn.cursor() as cur:
        if _table_identity(cur, schema, table) is None:
            return Drift(0, len(ids), ids_checksum([]), ids_checksum(ids))
        # COLLATE "C" orders by bytes, which for UTF-8 is Python's code point order.
        cur.execute(sql.SQL(
            "SELECT count(*), md5(coalesce(string_agg(chunk_id, E'\\n' ORDER BY chunk_id COLLATE \"C\"), '')) FROM {}"
        ).format(_ident(schema, table)))
        count, checksum = cur.fetchone()
    return Drift(count, len(ids), checksum, ids_checksum(ids))


def drop(conn, schema: str, table: str) -> bool:
    """Drop the collection's table (and a half-built `__new` one); True when the table existed."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (_ident(schema, table).as_string(cur),))
        existed = cur.fetchone()[0] is not None
        for name in (table, object_name(table, "__new")):
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_ident(schema, name)))
    return existed
