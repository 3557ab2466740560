"""Filters on a search: exact metadata values, a doc_id prefix, a page range.

A filter narrows the rows before ranking, so a filtered search still returns the k best matching chunks
whenever k chunks match. Metadata is compared per distinct metadata string (the rows of one document share
theirs), so a filter costs one JSON parse per document, not per chunk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class FilterableIndex(Protocol):
    """What a filter reads of an index (orca_core.search.LoadedIndex)."""

    doc_ids: list[str]
    pages: np.ndarray  # 0 where a chunk has no page
    metadata_codes: np.ndarray
    metadata_values: list[str | None]

    @property
    def rows(self) -> int: ...


class FilterError(ValueError):
    """A filter that cannot be applied as written."""


@dataclass(frozen=True)
class SearchFilter:
    """Rows must match every part given: each metadata key's value, the doc_id prefix, the page range."""

    metadata: dict[str, Any] = field(default_factory=dict)
    doc_id_prefix: str | None = None
    page_min: int | None = None
    page_max: int | None = None

    def __post_init__(self) -> None:
        if self.page_min is not None and self.page_max is not None and self.page_min > self.page_max:
            raise FilterError(f"the page range {self.page_min}-{self.page_max} is empty")

    @property
    def empty(self) -> bool:
        return not self.metadata and not self.doc_id_prefix and self.page_min is None and self.page_max is None

    @classmethod
    def parse_cli(cls, where: list[str], doc_prefix: str | None, pages: str | None) -> SearchFilter:
        """From `--where KEY=VALUE` (repeated), `--doc-prefix P` and `--pages N` or `N-M`."""
        metadata = {}
        for item in where:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise FilterError(f"--where takes KEY=VALUE, not {item!r}")
            metadata[key] = value
        low = high = None
        if pages:
            first, _, last = pages.partition("-")
            try:
                low, high = int(first), int(last or first)
            except ValueError:
                raise FilterError(f"--pages takes N or N-M (1-based), not {pages!r}") from None
        return cls(metadata, doc_prefix or None, low, high)


def matches(value: Any, wanted: Any) -> bool:
    """Exact match; a string given for a number or boolean (the CLI's only kind) matches its JSON spelling."""
    if value == wanted and type(value) is type(wanted):
        return True
    return isinstance(wanted, str) and not isinstance(value, str) and json.dumps(value) == wanted


def row_mask(index: FilterableIndex, where: SearchFilter) -> np.ndarray | None:
    """True for the rows `where` keeps; None when it keeps all of them."""
    if where.empty:
        return None
    return column_mask(index.rows, where, doc_ids=pa.array(index.doc_ids, pa.string()) if where.doc_id_prefix else None,
                       pages=index.pages, metadata_codes=index.metadata_codes, metadata_values=index.metadata_values)  # fmt: skip


def column_mask(
    rows: int,
    where: SearchFilter,
    *,
    doc_ids: pa.Array | pa.ChunkedArray | None,
    pages: np.ndarray,
    metadata_codes: np.ndarray | None,
    metadata_values: list[str | None] | None,
) -> np.ndarray:
    """`row_mask` over columns: doc ids (Arrow), pages (0 for none), metadata as codes into distinct strings."""
    keep = np.ones(rows, dtype=bool)
    if where.metadata:
        good = np.array([_metadata_matches(raw, where.metadata) for raw in metadata_values or []], dtype=bool)
        keep &= good[metadata_codes] if len(good) else np.zeros(rows, dtype=bool)
    if where.doc_id_prefix:
        keep &= pc.starts_with(doc_ids, where.doc_id_prefix).to_numpy(zero_copy_only=False)
    if where.page_min is not None or where.page_max is not None:
        keep &= pages >= max(where.page_min or 1, 1)  # 0 where a chunk has no page: never in a range
        if where.page_max is not None:
            keep &= pages <= where.page_max
    return keep


def _metadata_matches(raw: str | None, wanted: dict[str, Any]) -> bool:
    try:
        values = json.loads(raw) if raw else {}
    except ValueError:
        return False
    if not isinstance(values, dict):
        return False
    return all(key in values and matches(values[key], value) for key, value in wanted.items())
