"""The `documents` asset: a collection's inbox read into text, with what changed since the last run."""


import hashlib
import json
import time
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from orca_assets.extraction_pool import read_documents
from orca_assets.inbox_scan import InboxFile, scan_inbox
from orca_assets.partitions import EMBEDDING_GROUP, collection_check_spec, collections_partitions
from orca_assets.unchanged import file_identity, forget, recall, remember
from orca_assets.writer_lock import one_writer_per_collection
from orca_core.formats import MAX_TEXT_BYTES, is_packaged
from orca_core.layout import DOCUMENTS_FILE, FAILED_DOCUMENTS_FILE, Layout
from orca_core.loaders import DocumentError, Extracted
from orca_core.markdown import markdown_text
from orca_resources.inbox import read_source
from orca_resources.warehouse import WarehouseResource

DOCUMENTS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("content_hash", pa.string()),
        ("status", pa.string()),  # "ok" or "failed"
        ("error", pa.string()),
        ("title", pa.string()),
        ("metadata", pa.string()),  # a JSON object: format properties and front matter, then what was posted
        ("pages", pa.list_(pa.int64())),  # offsets in `text` where each page starts; null without pages
        ("text", pa.large_string()),
    ]
)


FAILED_DOCUMENTS_CHECK = "failed_documents_check"


class DocumentsConfig(dg.Config):
    """Run configuration of the `documents` asset."""

    max_document_bytes: int = Field(
        default=MAX_TEXT_BYTES, description="Largest plain-text document read (packaged formats: their own limit)."
    )


def document_source(layout: Layout, collection: str, doc_id: str) -> tuple[str, dict]:
    """Where a document came from (`intake:<request id>` for a posted one, else its inbox path) and the
    metadata posted with it."""
    record = read_source(layout.inbox(collection), doc_id) or {}
    posted = record.get("metadata")
    posted = posted if isinstance(posted, dict) else {}
    if record.get("request_id"):
        return f"intake:{record['request_id']}", posted
    return layout.inbox_source(collection, doc_id), posted


def document_fields(extracted: Extracted, posted: dict) -> dict:
    """The row fields of a read document; the hash covers everything the chunks carry, so a change to any
    of them (text, title, metadata, pages) re-chunks the document."""
    metadata = json.dumps({**extracted.properties, **posted}, ensure_ascii=False, sort_keys=True, default=str)
    fields = {"text": extracted.text, "title": extracted.title, "metadata": metadata, "pages": extracted.pages}
    digest = hashlib.sha256(extracted.text.encode())
    digest.update(json.dumps([extracted.title, metadata, extracted.pages]).encode())
    return {**fields, "content_hash": digest.hexdigest()}


def _previous_documents(warehouse: WarehouseResource, collection: str) -> dict[str, dict]:
    """The previous table's rows without their text (read only if a rewrite needs it), with their position."""
    footer = warehouse.footer(collection, DOCUMENTS_FILE)
    if footer is None or not set(DOCUMENTS_SCHEMA.names) <= set(footer.schema.names):
        return {}  # none yet, or written by a version without some columns: every document is read again
    table = warehouse.read(collection, DOCUMENTS_FILE, columns=[name for name in DOCUMENTS_SCHEMA.names if name != "text"])
    return {row["doc_id"]: {**row, "position": position} for position, row in enumerate(table.to_pylist())}


def _documents_table(warehouse: WarehouseResource, collection: str, rows: list[dict]) -> pa.Table:
    """The new table: fresh texts from `rows`, reused ones taken (in Arrow) from the previous table."""
    reused = [row["reuse"] for row in rows if row["reuse"] is not None]
    previous = warehouse.read(collection, DOCUMENTS_FILE, columns=["text"]) if reused else None
    pool = previous["text"].combine_chunks() if previous is not None else pa.array([], pa.large_string())
    fresh = pa.array([row["text"] for row in rows if row["reuse"] is None], pa.large_string())
    take, next_fresh = [], len(pool)
    for row in rows:
        if row["reuse"] is None:
            take.append(next_fresh)
            next_fresh += 1
        else:
            take.append(row["reuse"])
    texts = pa.concat_arrays([pool, fresh]).take(pa.array(take, pa.int64()))
    meta = pa.Table.from_pylist([{k: v for k, v in row.items() if k not in ("text", "reuse")} for row in rows],
                                schema=DOCUMENTS_SCHEMA.remove(DOCUMENTS_SCHEMA.get_field_index("text")))
    return meta.append_column(DOCUMENTS_SCHEMA.field("text"), texts)


@dg.asset(
    partitions_def=collections_partitions,
    group_name=EMBEDDING_GROUP,
    kinds={"python", "parquet"},
    description="Every document of the collection's inbox as text, with its content hash and status.",
    check_specs=[
        collection_check_spec(
            FAILED_DOCUMENTS_CHECK,
            "documents",
            "Warns when documents could not be read (each with its reason in failed_documents.parquet).",
        )
    ],
)
@one_writer_per_collection
def documents(
    context: dg.AssetExecutionContext, config: DocumentsConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    collection = context.partition_key
    started = time.perf_counter()
    layout = warehouse.layout
    inbox = layout.inbox(collection)
    if layout.linked_inbox(collection):
        raise dg.Failure(
            description=f"the inbox folder of {collection!r} is a symbolic link: not indexed, so that no link can "
            "bring files from elsewhere into an index; set ORCA_INBOX_FOLLOW_SYMLINKS=1 to index what it points to",
            allow_retries=False,
        )
    if not inbox.is_dir():
        context.log.warning(f"inbox folder {inbox} does not exist: the collection has no documents")
    found_files, listing = inbox_listing(inbox)
    folder = warehouse.collection_dir(collection)
    known = recall(folder, "documents", documents_key(listing, folder))
    if known is not None:
        # The very table written (or verified) from this same listing, with no failed document to retry: the
        # comparison below would find every row unchanged, so its figures are reported without reading it.
        counts = {"added": 0, "updated": 0, "unchanged": known["documents"], "failed": 0}
        return _result(context, collection, counts, deleted=0, total=known["documents"], rewritten=False,
                       failures=[], started=started)
    previous = _previous_documents(warehouse, collection)
    rows: list[dict] = []
    counts = dict.fromkeys(("added", "updated", "unchanged", "failed"), 0)
    failures: list[tuple[str, str]] = []
    # Files whose size or mtime changed (or that failed before) are read, packaged ones on every core.
    to_read = [found for found in found_files if found.refused is None and not _unchanged(previous, found)]
    outcomes = dict(zip((found.doc_id for found in to_read),
                        read_documents([found.path for found in to_read], lambda path: _max_bytes(path, config))))
    for found in found_files:
        before = previous.get(found.doc_id)
        row = {
            "doc_id": found.doc_id,
            "source": layout.inbox_source(collection, found.doc_id),
            "size": found.size,
            "mtime_ns": found.mtime_ns,
            "content_hash": None,
            "status": "ok",
            "error": None,
            "title": None,
            "metadata": None,
            "pages": None,
            "text": None,
            "reuse": None,  # position of the previous row whose text this row keeps
        }
        if found.refused is None and _unchanged(previous, found):
            # Size and mtime unchanged: trust the stored text instead of reading the file again.
            kept = ("content_hash", "source", "title", "metadata", "pages")
            row.update({name: before[name] for name in kept}, reuse=before["position"])
        else:
            row["source"], posted = document_source(layout, collection, found.doc_id)
            extracted = DocumentError(found.refused) if found.refused else outcomes.pop(found.doc_id)
            if isinstance(extracted, DocumentError):
                error = extracted
                row.update(status="failed", error=error.reason)
                counts["failed"] += 1
                failures.append((found.doc_id, error.reason))
                rows.append(row)
                continue
            row.update(document_fields(extracted, posted))
        if before is None or before["status"] != "ok":
            counts["added"] += 1
        elif before["content_hash"] != row["content_hash"]:
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
        rows.append(row)

    current_ids = {row["doc_id"] for row in rows}
    deleted = [doc_id for doc_id, row in previous.items() if doc_id not in current_ids and row["status"] == "ok"]
    # Unchanged when every row (text aside: reused rows keep theirs) equals the previous one, in order.
    rewritten = [_comparable(row) for row in rows] != [_comparable(row) for row in previous.values()] or any(
        row["reuse"] is None and row["status"] == "ok" for row in rows
    ) or not warehouse.path(collection, DOCUMENTS_FILE).exists()
    if rewritten:
        table = _documents_table(warehouse, collection, rows)
        warehouse.write(collection, DOCUMENTS_FILE, table)
        failed_rows = table.filter(pc.equal(table["status"], "failed"))
        warehouse.write(collection, FAILED_DOCUMENTS_FILE, failed_rows.select(["doc_id", "source", "size", "error"]))
    if failures:
        forget(folder, "documents")  # failed documents are read again on every run
    else:
        remember(folder, "documents", documents_key(listing, folder), {"documents": len(rows)})
    return _result(context, collection, counts, deleted=len(deleted), total=len(rows), rewritten=rewritten,
                   failures=failures, started=started)


def _result(context: dg.AssetExecutionContext, collection: str, counts: dict[str, int], *, deleted: int, total: int,
            rewritten: bool, failures: list[tuple[str, str]], started: float) -> dg.MaterializeResult:
    for doc_id, reason in failures[:50]:
        context.log.warning(f"document {doc_id!r} failed: {reason}")
    context.log.info(
        f"{collection}: {total} documents ({counts['added']} added, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {deleted} deleted, {counts['failed']} failed)"
    )
    return dg.MaterializeResult(
        metadata={
            **counts,
            "deleted": deleted,
            "documents": total - counts["failed"],
            "rewritten": rewritten,
            "seconds": round(time.perf_counter() - started, 3),
            "failures": dg.MetadataValue.md(_failure_table(failures)),
            "dagster/row_count": total,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=FAILED_DOCUMENTS_CHECK,
                passed=not failures,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"failed_documents": len(failures)},
                description=f"{len(failures)} documents could not be read" if failures else "every document was read",
            )
        ],
    )


def inbox_listing(inbox: Path) -> tuple[list[InboxFile], str]:
    """The inbox's files, and what it holds as far as a run tells changes: each file's id, size, mtime and
    refusal, in order, as one digest (an absent folder holds nothing)."""
    found = list(scan_inbox(inbox)) if inbox.is_dir() else []
    digest = hashlib.sha256()
    for item in found:
        digest.update(f"{item.doc_id}\0{item.size}\0{item.mtime_ns}\0{item.refused or ''}\n".encode())
    return found, digest.hexdigest()


def documents_key(listing: str, folder: Path) -> list:
    """The key `documents` verifies its table under: the inbox's listing and the table file it was read into."""
    return [listing, file_identity(folder / DOCUMENTS_FILE)]


def _unchanged(previous: dict[str, dict], found: InboxFile) -> bool:
    """Read before, and its size and mtime are the same: its stored text is trusted instead of reading again."""
    before = previous.get(found.doc_id)
    return (
        before is not None and before["status"] == "ok" and (before["size"], before["mtime_ns"]) == (found.size, found.mtime_ns)
    )


def _max_bytes(path: Path, config: DocumentsConfig) -> int | None:
    """The configured limit for plain text; packaged formats (PDF, Office...) keep their own."""
    return None if is_packaged(path.suffix.lower()) else config.max_document_bytes


def _comparable(row: dict) -> tuple:
    return tuple(row.get(name) for name in DOCUMENTS_SCHEMA.names if name != "text")


def _failure_table(failures: list[tuple[str, str]], limit: int = 50) -> str:
    if not failures:
        return "No failed documents."
    lines = ["| document | reason |", "| --- | --- |"]
    lines += [f"| {markdown_text(doc_id)} | {markdown_text(reason)} |" for doc_id, reason in failures[:limit]]
    if len(failures) > limit:
        lines.append(f"| ... | {len(failures) - limit} more |")
    return "\n".join(lines)
