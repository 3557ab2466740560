"""Searching a collection's served index: shared by `orca search` and the REST intake's `/v1/search`.

The index Parquet (see ARCHITECTURE.md) is read with pyarrow once and kept, normalised, in a small cache
keyed by path and file identity: the index is replaced by a rename, so a new version has a new inode and
mtime and is read again, while repeated queries against an unchanged index cost one matrix product.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orca_core.embedder import Embedder
from orca_core.model_names import same_model
from orca_core.search_filter import SearchFilter, row_mask

CACHED_INDEXES = 4  # whole indexes with their vectors are large: keep only the few being queried
_COLUMNS = ["chunk_id", "doc_id", "chunk_index", "text", "source", "embedding", "model"]


class SearchError(Exception):
    """A search that cannot be answered; the message says what to do."""


class IndexNotFound(SearchError):
    """The collection has no served index yet."""


class IndexUnreadable(SearchError):
    """The index file exists but is not an index this code can rank (corrupt, missing columns, ragged vectors)."""


class ModelMismatch(SearchError):
    """The index was built by another model (or with other dimensions) than the configured embedder."""


class SearchRow(TypedDict):
    """One ranked chunk."""

    chunk_id: str
    doc_id: str
    chunk_index: int
    text: str
    source: str | None
    page: int | None
    section: str | None
    title: str | None
    metadata: dict
    score: float


@dataclass(frozen=True)
class LoadedIndex:
    """An index in memory: unit-length vectors plus the columns a result shows."""

    path: Path
    model: str | None
    models: tuple[str, ...]
    matrix: np.ndarray
    chunk_ids: list[str]
    doc_ids: list[str]
    chunk_indexes: list[int]
    texts: list[str]
    sources: list[str | None]
    pages: np.ndarray  # int32, 0 where a chunk has no page
    sections: list[str | None]
    titles: list[str | None]
    metadata_codes: np.ndarray  # row -> position in metadata_values (rows of one document share one string)
    metadata_values: list[str | None]
    updated_at: datetime

    @property
    def rows(self) -> int:
        return len(self.chunk_ids)


@dataclass(frozen=True)
class SearchResult:
    """The model that ranked, the results (best first) and which of Orca's embedders embedded the query."""

    model: str
    results: list[SearchRow]
    embedder: str = ""


_cache: OrderedDict[Path, tuple[tuple[int, int, int], LoadedIndex]] = OrderedDict()
_cache_lock = threading.Lock()


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Scale rows to unit length (not every embedder returns unit vectors); zero rows stay zero."""
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def index_models(table: pa.Table) -> tuple[str, ...]:
    """Distinct models of an index: its `model` column, else its `orca.model` metadata (an empty index)."""
    models: set[str] = set()
    if "model" in table.column_names:
        models = {m for m in pc.unique(table["model"]).to_pylist() if m}
    if not models:
        meta = (table.schema.metadata or {}).get(b"orca.model")
        models = {meta.decode()} if meta else set()
    return tuple(sorted(models))


def _matrix(table: pa.Table) -> np.ndarray:
    column = table["embedding"].combine_chunks()
    if table.num_rows == 0:
        return np.zeros((0, 0), dtype=np.float32)
    if pa.types.is_fixed_size_list(column.type) and column.null_count == 0:
        values = column.flatten().to_numpy(zero_copy_only=False)  # one length, no offsets: a view of the values
        return normalize_rows(values.astype(np.float32, copy=False).reshape(table.num_rows, -1))
    if pa.types.is_fixed_size_list(column.type):
        column = column.cast(pa.list_(column.type.value_type))
    lengths = pc.unique(pc.list_value_length(column)).to_pylist()
    if len(lengths) != 1 or lengths[0] in (None, 0):
        raise IndexUnreadable(f"the index mixes vectors of {sorted(map(str, lengths))} dimensions")
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return normalize_rows(values.reshape(table.num_rows, -1))


def _read(path: Path) -> tuple[tuple[int, int, int], LoadedIndex]:
    try:
        with open(path, "rb") as handle:
            # Identity and content come from the same open file, so a rename in between cannot mix them.
            stat = os.fstat(handle.fileno())
            signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            table = pq.read_table(handle)
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as error:
        raise IndexUnreadable(f"cannot read the index {path}: {error}") from error
    missing = [name for name in _COLUMNS if name not in table.column_names and name != "source"]
    if missing:
        raise IndexUnreadable(f"the index {path} lacks the column(s) {', '.join(missing)}")
    models = index_models(table)
    rows = table.num_rows
    metadata = _optional(table, "metadata", pa.string()).fill_null("{}").combine_chunks().dictionary_encode()
    loaded = LoadedIndex(
        path=path,
        model=", ".join(models) or None,
        models=models,
        matrix=_matrix(table),
        chunk_ids=table["chunk_id"].to_pylist(),
        doc_ids=table["doc_id"].to_pylist(),
        chunk_indexes=table["chunk_index"].to_pylist(),
        texts=table["text"].to_pylist(),
        sources=table["source"].to_pylist() if "source" in table.column_names else [None] * rows,
        pages=_optional(table, "page", pa.int32()).fill_null(0).to_numpy().astype(np.int32),
        sections=_optional(table, "section", pa.string()).to_pylist(),
        titles=_optional(table, "title", pa.string()).to_pylist(),
        metadata_codes=metadata.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        metadata_values=metadata.dictionary.to_pylist(),
        updated_at=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
    )
    return signature, loaded


def _optional(table: pa.Table, name: str, kind: pa.DataType) -> pa.ChunkedArray:
    """A column of the index, or nulls for an index written before the column existed."""
    if name in table.column_names:
        return table[name].cast(kind)
    return pa.chunked_array([pa.nulls(table.num_rows, kind)])


def load_index(path: Path) -> LoadedIndex:
    """The index at `path`, from the cache while the file is unchanged; IndexNotFound when there is none."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise IndexNotFound(f"there is no index at {path} yet") from None
    signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == signature:
            _cache.move_to_end(path)
            return cached[1]
    try:
        signature, loaded = _read(path)
    except FileNotFoundError:
        raise IndexNotFound(f"there is no index at {path} yet") from None
    with _cache_lock:
        _cache[path] = (signature, loaded)
        _cache.move_to_end(path)
        while len(_cache) > CACHED_INDEXES:
            _cache.popitem(last=False)
    return loaded


def check_model(index: LoadedIndex, configured: str, collection: str) -> None:
    """ModelMismatch unless every vector of the index comes from the configured model."""
    if not index.models or all(same_model(model, configured) for model in index.models):
        return
    built = " and ".join(f"'{model}'" for model in index.models)
    raise ModelMismatch(
        f"the index of '{collection}' was built with {built} but the configured embedder uses '{configured}'; "
        f"vectors of different models are not comparable. Rebuild the index with '{configured}' "
        f"(a reindex job or `orca materialize {collection}`), or configure {built} again."
    )


def top_k(index: LoadedIndex, query_vector: np.ndarray, k: int, where: SearchFilter | None = None) -> list[SearchRow]:
    """The `k` chunks most similar (cosine) to `query_vector` among those `where` keeps, best first; ties keep
    index order."""
    if index.rows == 0 or k <= 0:
        return []
    query = normalize_rows(np.asarray(query_vector, dtype=np.float32).reshape(1, -1))[0]
    if query.shape[0] != index.matrix.shape[1]:
        raise ModelMismatch(
            f"the query has {query.shape[0]} dimensions but the index has {index.matrix.shape[1]}: "
            "rebuild the index with the configured embedder"
        )
    scores = index.matrix @ query
    keep = row_mask(index, where) if where is not None else None
    rows = np.flatnonzero(keep) if keep is not None else np.arange(index.rows)
    k = min(k, len(rows))
    if k == 0:
        return []
    kept = scores[rows]
    candidates = rows[np.argpartition(-kept, k - 1)[:k]] if k < len(rows) else rows
    best = candidates[np.lexsort((candidates, -scores[candidates]))]
    return [_row(index, i, float(scores[i])) for i in best.tolist()]


def _row(index: LoadedIndex, i: int, score: float) -> SearchRow:
    raw = index.metadata_values[index.metadata_codes[i]] if index.metadata_values else None
    values = {"chunk_id": index.chunk_ids[i], "doc_id": index.doc_ids[i], "chunk_index": index.chunk_indexes[i],
              "text": index.texts[i], "source": index.sources[i], "page": int(index.pages[i]),
              "section": index.sections[i], "title": index.titles[i], "metadata": raw}  # fmt: skip
    return search_row(values, score)


def search_row(values: dict, score: float) -> SearchRow:
    """A hit from an index row's columns (`metadata` a JSON string, `page` 0 or null without a page)."""
    try:
        metadata = json.loads(values["metadata"]) if values["metadata"] else {}
    except ValueError:
        metadata = {}
    return SearchRow(
        chunk_id=values["chunk_id"],
        doc_id=values["doc_id"],
        chunk_index=int(values["chunk_index"]),
        text=values["text"],
        source=values["source"],
        page=values["page"] or None,
        section=values["section"],
        title=values["title"],
        metadata=metadata if isinstance(metadata, dict) else {},
        score=score,
    )


def search_index(
    path: Path, embedder: Embedder, query: str, k: int, *, collection: str, where: SearchFilter | None = None
) -> SearchResult:
    """Embed `query` (with the model's query prefix) and rank the rows of the index at `path` that `where` keeps.

    Raises IndexNotFound, IndexUnreadable, ModelMismatch, or the embedder's own EmbedderError.
    """
    try:
        index = load_index(path)
    except IndexNotFound:
        raise IndexNotFound(
            f"collection '{collection}' has no index yet: add documents and wait for its first run "
            f"(or run `orca materialize {collection}`)"
        ) from None
    configured = embedder.model_info().name
    check_model(index, configured, collection)
    if index.rows == 0:
        return SearchResult(configured, [])
    return SearchResult(configured, top_k(index, embedder.embed_query(query), k, where))
