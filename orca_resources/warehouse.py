"""A collection's Parquet files in the warehouse, written atomically and read through one open file.

Every file a reader may open is written aside and renamed into place, so neither a reader nor a crash
ever sees half of it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import PrivateAttr

from orca_core.layout import INDEX_FILE, LocalLayout
from orca_core.settings import OrcaSettings
from orca_core.storage import Storage, open_storage


def prefer_jemalloc() -> None:
    """Use Arrow's jemalloc pool for this process unless the user chose one (ARROW_DEFAULT_MEMORY_POOL).

    Measured on this pipeline: the default mimalloc pool keeps the pages of freed batches, so a step starts
    from what the previous step left behind (200,000 chunks: the index step started at 380 MiB with
    mimalloc, 242 MiB with jemalloc, for the same work). jemalloc hands freed pages back to the system.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, pa.ArrowException):
        pass  # a pyarrow built without jemalloc: keep its default


# Row groups of streamed writes: big enough for good compression, small enough to bound a reader's memory
# (2,048 rows of 768 float32 are 6 MiB). A streamed file's row groups hold fewer than twice this many rows.
ROW_GROUP_ROWS = 2048


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_file(staged: Path, target: Path) -> None:
    """Replace `target` with the complete file `staged` in one durable rename (readers see one or the other)."""
    with open(staged, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(staged, target)
    fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        publish_file(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def parquet_options(schema: pa.Schema) -> dict:
    """How Orca writes Parquet: zstd, except vector columns, which have no compression, dictionary or statistics.

    The floats of a real model hardly repeat or compress: a dictionary, which Arrow builds for every column
    chunk, finds too large and drops, made writing an index or a vector store about twice as costly in CPU
    (41,000 vectors of 768 floats: 0.70 s against 0.37 s), and zstd saves 8% of their size for about 3 us of
    CPU per vector at every write and every read (an index is read twice after it is written: its checks and
    the search copy). Compression once seemed to bound the index step's memory; that was pyarrow reading ahead
    the whole file, which `open_parquet` turns off.
    """
    vectors = (pa.types.is_fixed_size_list, pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_binary)
    raw = {field.name for field in schema if any(is_type(field.type) for is_type in vectors)}
    compression = {name: "none" if name in raw else "zstd" for name in schema.names} if raw else "zstd"
    plain = [name for name in schema.names if name not in raw]
    # Nor min/max statistics: no reader filters on a vector's floats, and Arrow computes them for every value.
    return {"compression": compression, "use_dictionary": plain, "write_statistics": plain}


def write_parquet_atomic(table: pa.Table, target: Path) -> None:
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, **parquet_options(table.schema))


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table | None:
    """Read a Parquet file, or None when it does not exist yet.

    Reads through one open file: pyarrow opens a path more than once, and a rename in between (an atomic
    replace) would mix the old file's footer with the new file's bytes. The file is Arrow's own (OSFile),
    not a Python file object, whose reads would go through Python bytes outside Arrow's memory pool.
    """
    try:
        with pa.OSFile(str(path)) as handle:
            return pq.read_table(handle, columns=columns)
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class Footer:
    """What a Parquet file's footer tells without reading any data: schema (with metadata) and row count."""

    schema: pa.Schema
    num_rows: int

    @property
    def metadata(self) -> dict[str, str]:
        return {key.decode(): value.decode() for key, value in (self.schema.metadata or {}).items()}


def read_footer(path: Path) -> Footer | None:
    """The footer of a Parquet file, or None when it does not exist (reads a few KiB, never the data)."""
    try:
        with pa.OSFile(str(path)) as handle:
            parquet = pq.ParquetFile(handle)
            return Footer(parquet.schema_arrow, parquet.metadata.num_rows)
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def open_parquet(path: Path) -> Iterator[pq.ParquetFile | None]:
    """A ParquetFile over one open handle (see read_parquet), or None when the file does not exist.

    Without pre-buffering: pyarrow's default reads ahead and keeps every row group `iter_batches` will visit,
    so streaming the 200,000 vectors of bench row 7 held all of them (write_index peaked at 870 MiB, 280
    without). Pre-buffering pays on object stores with high latency, never on a local file.
    """
    try:
        handle = pa.OSFile(str(path))
    except FileNotFoundError:
        yield None
        return
    with handle:
        yield pq.ParquetFile(handle, pre_buffer=False)


class StreamWriter:
    """Writes record batches as they come, in row groups of ROW_GROUP_ROWS to twice that many rows."""

    def __init__(self, writer: pq.ParquetWriter, schema: pa.Schema, rows: int = ROW_GROUP_ROWS):
        self.writer, self.schema, self.rows = writer, schema, rows
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        self.num_rows = 0

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        if isinstance(batch, pa.Table):
            for piece in batch.to_batches():
                self.write(piece)
            return
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        self.num_rows += batch.num_rows
        if self.pending_rows >= self.rows:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            table = pa.Table.from_batches(self.pending, schema=self.schema)
            # Split evenly, however large the batches written: a reader holds a whole row group (the search copy
            # reads one, vectors and all, and makes several copies of its vectors). One row group per store batch
            # made a 30,619-row group in the index of 200,000 synthetic chunks (duplicate texts share a vector).
            groups = max(1, table.num_rows // self.rows)
            self.writer.write_table(table, row_group_size=-(-table.num_rows // groups))
            self.pending, self.pending_rows = [], 0


@contextlib.contextmanager
def stream_parquet_atomic(target: Path, schema: pa.Schema) -> Iterator[StreamWriter]:
    """Write `target` batch by batch aside, and rename it into place only once it is complete."""
    with atomic_path(target) as tmp:
        writer = pq.ParquetWriter(tmp, schema, **parquet_options(schema))
        stream = StreamWriter(writer, schema)
        try:
            yield stream
            stream.flush()
        finally:
            writer.close()


class WarehouseResource(dg.ConfigurableResource):
    """Where collections live (`orca_core.layout`), with the Parquet reads and atomic writes of the assets."""

    home: str = ".orca"
    # Where inbox/ and warehouse/ live (ORCA_STORAGE_URL): None for `home` itself, or s3://bucket/prefix, in
    # which case `home` holds this machine's copy, pulled and pushed around each step (orca_core/storage.py).
    storage_url: str | None = None
    inbox_sweep_ticks: int = OrcaSettings.model_fields["inbox_sweep_ticks"].default  # see OrcaSettings
    inbox_follow_symlinks: bool = False  # see OrcaSettings
    max_collections: int = OrcaSettings.model_fields["max_collections"].default  # see OrcaSettings
    # The index's search copy (orca_core/ann), what local search reads; off when pgvector answers searches.
    search_copy: bool = True

    @classmethod
    def from_settings(cls, settings: OrcaSettings) -> WarehouseResource:
        """The warehouse the settings describe (the Definitions' resource, and the commands' view of it)."""
        return cls(
            home=str(settings.home),
            storage_url=settings.storage_url,
            inbox_sweep_ticks=settings.inbox_sweep_ticks,
            inbox_follow_symlinks=settings.inbox_follow_symlinks,
            max_collections=settings.max_collections,
            search_copy=not settings.pgvector_url,
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Per run, not at import: the pool is process-wide, and importers such as the intake need not change it.
        prefer_jemalloc()

    # The layout, made once per resource (its fields never change): resolving `home` costs an lstat per component.
    _layout: LocalLayout | None = PrivateAttr(default=None)
    _storage: Storage | None = PrivateAttr(default=None)

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            self._storage = open_storage(self.storage_url, self.layout.home)
        return self._storage

    @contextlib.contextmanager
    def synced(self, collection: str) -> Iterator[None]:
        """Around a step that writes `collection` (under its lock): pull the copy first, push it on success."""
        self.storage.pull(self.layout, collection)
        yield
        self.storage.push(self.layout, collection)

    def saved(self, collection: str, path: Path) -> None:
        """A file written mid-step that a killed step must not lose (orca_core/storage.py `saved`)."""
        self.storage.saved(self.layout, collection, path)

    @property
    def layout(self) -> LocalLayout:
        if self._layout is None:
            home = Path(self.home).expanduser().resolve()
            self._layout = LocalLayout(home, follow_symlinks=self.inbox_follow_symlinks)
        return self._layout

    def collection_dir(self, collection: str) -> Path:
        """The collection's warehouse folder, created when missing."""
        path = self.layout.warehouse(collection)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def path(self, collection: str, name: str) -> Path:
        return self.collection_dir(collection) / name

    def index_path(self, collection: str) -> Path:
        return self.path(collection, INDEX_FILE)

    def search_dir(self, collection: str) -> Path:
        return self.layout.search_dir(collection)

    def read(self, collection: str, name: str, columns: list[str] | None = None) -> pa.Table | None:
        return read_parquet(self.path(collection, name), columns)

    def footer(self, collection: str, name: str) -> Footer | None:
        return read_footer(self.path(collection, name))

    def stream(self, collection: str, name: str, schema: pa.Schema) -> contextlib.AbstractContextManager[StreamWriter]:
        return stream_parquet_atomic(self.path(collection, name), schema)

    def write(self, collection: str, name: str, table: pa.Table) -> Path:
        target = self.path(collection, name)
        write_parquet_atomic(table, target)
        return target
