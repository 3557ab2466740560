"""The index's blocking checks: right dimension, sound vectors, one row per chunk, no deleted documents.

They are declared on `embedding_index` (`INDEX_CHECK_SPECS`) and evaluated by the asset itself on the index it
has just staged, before that index replaces the served one (orca_assets/index.py): an index that fails a
check is never served. Each check reads the file it is given, so the same code judges a staged index and
the served one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orca_assets.partitions import collection_check_spec
from orca_assets.stored_vectors import vector_matrix
from orca_core.asset_names import INDEX_ASSET
from orca_core.layout import CHUNKS_FILE, DOCUMENTS_FILE, FAILED_CHUNKS_FILE, INDEX_VERDICTS_FILE
from orca_resources.warehouse import ROW_GROUP_ROWS, WarehouseResource, open_parquet, read_footer, read_parquet

UNIT_NORM_TOLERANCE = 1e-3
VALUE_COUNTS = ("non_finite_rows", "zero_rows", "off_unit_norm_rows")  # embedding_values_check's counts


@dataclass(frozen=True)
class IndexFile:
    """The index being judged (staged or served) and where the collection's other files are."""

    path: Path
    warehouse: WarehouseResource
    collection: str

    def column(self, name: str) -> pa.ChunkedArray:
        """One column of the index (never the vectors: those are streamed, see vector_summary)."""
        return read_parquet(self.path, columns=[name])[name]

    @cached_property
    def vector_summary(self) -> VectorSummary:
        """What both vector checks need, from one pass over the vectors a row group at a time: the pass
        decodes every vector, the largest cost of judging an index, so it is made once per judgement."""
        footer = read_footer(self.path)
        summary = VectorSummary(int(footer.metadata["orca.dimensions"]),
                                footer.metadata.get("orca.normalized", "true") == "true")  # fmt: skip
        with open_parquet(self.path) as index:
            for batch in index.iter_batches(batch_size=ROW_GROUP_ROWS, columns=["embedding"]):
                summary.add(batch.column(0))
        return summary


@dataclass
class VectorSummary:
    """Counts over an index's vectors, gathered batch by batch (IndexFile.vector_summary)."""

    expected: int  # the dimension the model reports
    normalized: bool  # whether the embedder promises unit-length vectors
    rows: int = 0
    wrong_dimension: int = 0
    lengths: set = field(default_factory=set)
    counts: dict = field(default_factory=lambda: dict.fromkeys(VALUE_COUNTS, 0))
    low: float = np.inf
    high: float = -np.inf

    def add(self, vectors: pa.Array) -> None:
        self.rows += len(vectors)
        lengths = pc.list_value_length(vectors)
        self.wrong_dimension += len(vectors) - (pc.sum(pc.equal(lengths, self.expected)).as_py() or 0)
        self.lengths.update(pc.unique(lengths).to_pylist())
        if not self.uniform:
            return  # mixed dimensions, or a missing vector: the verdict is known, only the count above is wanted
        matrix = vector_matrix(vectors, next(iter(self.lengths)))
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            matrix = np.where(np.isfinite(matrix), matrix, 0.0)
        norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))  # no squared copy of the matrix
        zero = norms < 1e-6
        off_unit = np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE if self.normalized else np.zeros_like(zero)
        self.counts["non_finite_rows"] += int((~finite).sum())
        self.counts["zero_rows"] += int(zero.sum())
        self.counts["off_unit_norm_rows"] += int(off_unit.sum())
        if len(norms):
            self.low, self.high = min(self.low, float(norms.min())), max(self.high, float(norms.max()))

    @property
    def uniform(self) -> bool:
        return len(self.lengths) == 1 and None not in self.lengths


@dataclass(frozen=True)
class Verdict:
    passed: bool
    metadata: dict
    why: str  # one sentence for the run's failure message and the check's description


def _count(mask: pa.Array) -> int:
    return pc.sum(mask).as_py() or 0


def embedding_dimension(index: IndexFile) -> Verdict:
    summary = index.vector_summary
    wrong, expected = summary.wrong_dimension, summary.expected
    why = f"{wrong} rows do not have the model's {expected} dimensions" if wrong else f"all {expected}-dimensional"
    return Verdict(wrong == 0, {"expected_dimension": expected, "wrong_rows": wrong}, why)


def embedding_values(index: IndexFile) -> Verdict:
    summary = index.vector_summary
    if summary.rows == 0:
        return Verdict(True, {"rows": 0}, "no rows")
    if not summary.uniform:
        why = "vectors are missing or of mixed dimensions"
        return Verdict(False, {"distinct_dimensions": len(summary.lengths)}, why)
    bad = {name: count for name, count in summary.counts.items() if count}
    why = ", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in bad.items()) or "all finite"
    return Verdict(not bad, {**summary.counts, "min_norm": summary.low, "max_norm": summary.high}, why)


def chunk_coverage(index: IndexFile) -> Verdict:
    index_ids = index.column("chunk_id")
    distinct = pc.unique(index_ids)
    duplicated = len(index_ids) - len(distinct)
    chunk_table = index.warehouse.read(index.collection, CHUNKS_FILE, columns=["chunk_id", "text"])
    if chunk_table is None:
        chunk_table = pa.table({"chunk_id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    chunk_ids = pc.unique(chunk_table["chunk_id"])
    failed = index.warehouse.read(index.collection, FAILED_CHUNKS_FILE, columns=["text"])
    if failed is not None and failed.num_rows:
        excused_mask = pc.is_in(chunk_table["text"], value_set=failed["text"].combine_chunks())
        excused = pc.unique(chunk_table.filter(excused_mask)["chunk_id"])
    else:
        excused = pa.array([], pa.string())
    covered = pa.concat_arrays([excused.cast(pa.string()), distinct.cast(pa.string())])
    counts = {
        "missing_chunks": _count(pc.invert(pc.is_in(chunk_ids, value_set=covered))),
        "duplicated_chunks": _count(pc.greater(pc.value_counts(index_ids).field("counts"), 1)) if duplicated else 0,
        "rows_for_unknown_chunks": _count(pc.invert(pc.is_in(distinct, value_set=chunk_ids))),
    }
    bad = {name: count for name, count in counts.items() if count}
    why = ", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in bad.items()) or "one row per chunk"
    return Verdict(not bad, {**counts, "failed_chunks": len(excused)}, why)


def deleted_documents(index: IndexFile) -> Verdict:
    docs = index.warehouse.read(index.collection, DOCUMENTS_FILE, columns=["doc_id", "status"])
    current = set(docs.filter(pc.equal(docs["status"], "ok"))["doc_id"].to_pylist()) if docs is not None else set()
    stale = sorted(set(pc.unique(index.column("doc_id")).to_pylist()) - current)
    why = f"rows of {len(stale)} documents no longer in the inbox (e.g. {', '.join(stale[:3])})" if stale else "none"
    return Verdict(not stale, {"rows_for_deleted_documents": len(stale), "examples": ", ".join(stale[:5]) or "none"}, why)


@dataclass(frozen=True)
class IndexCheck:
    name: str
    description: str
    judge: Callable[[IndexFile], Verdict]


INDEX_CHECKS = [
    IndexCheck("embedding_dimension_check", "Every vector has the dimension the model reports.", embedding_dimension),
    IndexCheck("embedding_values_check", "Every vector is finite and, for normalising embedders, of unit norm.",
               embedding_values),
    IndexCheck("chunk_coverage_check", "Every current chunk has exactly one row (failed chunks excepted).",
               chunk_coverage),
    IndexCheck("deleted_documents_check", "No row belongs to a document that is gone from the inbox.",
               deleted_documents),
]

INDEX_CHECK_SPECS = [
    collection_check_spec(
        check.name,
        INDEX_ASSET,
        f"{check.description} Blocking: evaluated on the staged index, which is published only if it passes.",
        blocking=True,
    )
    for check in INDEX_CHECKS
]


def judge_index(index: IndexFile) -> list[tuple[IndexCheck, Verdict]]:
    return [(check, check.judge(index)) for check in INDEX_CHECKS]


def check_results(verdicts: list[tuple[IndexCheck, Verdict]]) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(check_name=check.name, passed=verdict.passed, metadata=verdict.metadata,
                            description=verdict.why)
        for check, verdict in verdicts
    ]


def failures(verdicts: list[tuple[IndexCheck, Verdict]]) -> str:
    """'name: why; name: why' for the checks that failed ('' when all passed)."""
    return "; ".join(f"{check.name}: {verdict.why}" for check, verdict in verdicts if not verdict.passed)


def judged_files(index: IndexFile, inputs: str | None) -> list:
    """What the verdicts depend on: the index file itself (inode, size, mtime), the chunks and vectors it was
    built from, and the documents table; a file edited by hand gets a new mtime and is judged again."""
    identity: list = [inputs]
    for path in (index.path, index.warehouse.path(index.collection, DOCUMENTS_FILE)):
        try:
            info = os.stat(path)
            identity.append([info.st_ino, info.st_size, info.st_mtime_ns])
        except FileNotFoundError:
            identity.append(None)
    return identity


def remembered_verdicts(index: IndexFile, inputs: str | None) -> list[tuple[IndexCheck, Verdict]] | None:
    """The verdicts recorded for this very file when it was last judged and passed, or None."""
    try:
        record = json.loads(index.warehouse.path(index.collection, INDEX_VERDICTS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("judged") != judged_files(index, inputs):
        return None
    saved = record.get("verdicts", {})
    if set(saved) != {check.name for check in INDEX_CHECKS}:
        return None
    return [(check, Verdict(True, saved[check.name]["metadata"], saved[check.name]["why"])) for check in INDEX_CHECKS]


def remember_verdicts(index: IndexFile, inputs: str | None, verdicts: list[tuple[IndexCheck, Verdict]]) -> None:
    """Record passing verdicts of the served index, so an unchanged run need not read every vector again."""
    if failures(verdicts):
        return
    record = {
        "judged": judged_files(index, inputs),
        "verdicts": {check.name: {"metadata": verdict.metadata, "why": verdict.why} for check, verdict in verdicts},
    }
    target = index.warehouse.path(index.collection, INDEX_VERDICTS_FILE)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, target)
