"""What a collection holds, read from disk: inbox documents and the served index's summary.

Only the index's footer, metadata and small columns are read, and the summary is cached per file version,
so listing many collections never loads their vectors.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orca_resources.inbox import iter_documents
from orca_resources.search import index_models
from orca_resources.settings import is_valid_collection


@dataclass(frozen=True)
class IndexSummary:
    """The served index of a collection: rows (chunks), distinct documents, model and when it was published."""

    chunks: int
    documents: int
    model: str | None
    updated_at: datetime


_summaries: dict[Path, tuple[tuple[int, int, int], IndexSummary]] = {}
_lock = threading.Lock()


def index_summary(path: Path) -> IndexSummary | None:
    """The summary of the index at `path`, or None when the collection has none yet (or it is unreadable)."""
    try:
        # One open file for identity and content: the index is replaced by a rename, and reading it by path
        # (pyarrow opens a path more than once) could mix the old file's size with the new file's bytes.
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            with _lock:
                cached = _summaries.get(path)
            if cached is not None and cached[0] == signature:
                return cached[1]
            table = pq.read_table(handle, columns=["doc_id", "model"])
    except (OSError, pa.ArrowException, KeyError):
        return None
    models = index_models(table)
    summary = IndexSummary(
        chunks=table.num_rows,
        documents=pc.count_distinct(table["doc_id"]).as_py() if table.num_rows else 0,
        model=", ".join(models) or None,
        # The index is replaced by one rename per successful run, so its mtime is the last publication.
        updated_at=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
    )
    with _lock:
        _summaries[path] = (signature, summary)
    return summary


def collection_names(inbox: Path, warehouse: Path) -> list[str]:
    """Every collection with an inbox folder or a warehouse folder, sorted."""
    names: set[str] = set()
    for root in (inbox, warehouse):
        if root.is_dir():
            names |= {p.name for p in root.iterdir() if p.is_dir() and is_valid_collection(p.name)}
    return sorted(names)


def count_documents(inbox_dir: Path) -> int:
    return sum(1 for _ in iter_documents(inbox_dir)) if inbox_dir.is_dir() else 0
