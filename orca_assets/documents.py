"""The `documents` asset: a collection's inbox read into text, with what changed since the last run."""


import errno
import hashlib
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow as pa

from orca_assets.partitions import collections_partitions
from orca_assets.writer_lock import one_writer_per_collection
from orca_core.layout import DOCUMENTS_FILE, Layout
from orca_core.loaders import DocumentError, describe_os_error, read_document
from orca_core.markdown import markdown_text
from orca_core.names import MAX_DOCUMENT_BYTES, is_ignored_name
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
        ("text", pa.large_string()),
    ]
)


class DocumentsConfig(dg.Config):
    """Run configuration of the `documents` asset."""

    max_document_bytes: int = MAX_DOCUMENT_BYTES


@dataclass(frozen=True)
class InboxFile:
    """One file found in the inbox (or a link that must not be followed)."""

    doc_id: str
    path: Path
    size: int
    mtime_ns: int
    refused: str | None = None


def scan_inbox(root: Path) -> Iterator[InboxFile]:
    """Walk `root` recursively without following links out of it; skip hidden and temporary names.

    An entry that cannot be a document (a link out of the inbox or in a loop, a name that is not UTF-8, a link
    to a FIFO or device) is yielded refused, with the reason, so it fails alone; FIFOs, sockets and devices
    themselves are skipped.
    """
    real_root = root.resolve()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue  # a folder removed during the walk holds nothing to index
        for entry in entries:
            if is_ignored_name(entry.name):
                continue
            path = Path(entry.path)
            doc_id = path.relative_to(root).as_posix()
            try:
                doc_id.encode("utf-8")
            except UnicodeEncodeError:
                # The table and the index hold UTF-8 strings: show the name with its bad bytes escaped.
                shown = os.fsencode(doc_id).decode("utf-8", "backslashreplace")
                yield InboxFile(shown, path, 0, 0, "file name is not valid UTF-8; rename the file")
                continue
            try:
                if entry.is_symlink():
                    try:
                        target = path.resolve(strict=True)
                    except RuntimeError:  # Python 3.11 reports a loop so; later versions raise OSError
                        raise OSError(errno.ELOOP, "symbolic link loop") from None
                    if not target.is_relative_to(real_root):
                        yield InboxFile(doc_id, path, 0, 0, "symbolic link pointing outside the inbox (not followed)")
                        continue
                    if target.is_dir():
                        continue  # a linked folder inside the inbox is walked where it really is
                    info = target.stat()
                    if not stat.S_ISREG(info.st_mode):
                        yield InboxFile(doc_id, path, 0, 0, "symbolic link to a FIFO, socket or device (not read)")
                        continue
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                    continue
                elif entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                else:
                    continue  # sockets, fifos and devices are not documents
            except OSError as error:
                loop = error.errno == errno.ELOOP
                reason = "symbolic link loop (not followed)" if loop else f"unreadable: {describe_os_error(error)}"
                yield InboxFile(doc_id, path, 0, 0, reason)
                continue
            yield InboxFile(doc_id, path, info.st_size, info.st_mtime_ns)



def document_source(layout: Layout, collection: str, doc_id: str) -> str:
    """`intake:<request id>` for a document posted to the REST intake, else its inbox path."""
    record = read_source(layout.inbox(collection), doc_id)
    if record and record.get("request_id"):
        return f"intake:{record['request_id']}"
    return layout.inbox_source(collection, doc_id)


def _previous_documents(warehouse: WarehouseResource, collection: str) -> dict[str, dict]:
    """The previous table's rows without their text (read only if a rewrite needs it), with their position."""
    table = warehouse.read(collection, DOCUMENTS_FILE, columns=[name for name in DOCUMENTS_SCHEMA.names if name != "text"])
    if table is None:
        return {}
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
    group_name="embedding",
    kinds={"python", "parquet"},
    description="Every document of the collection's inbox as text, with its content hash and status.",
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
    previous = _previous_documents(warehouse, collection)
    rows: list[dict] = []
    counts = dict.fromkeys(("added", "updated", "unchanged", "failed"), 0)
    failures: list[tuple[str, str]] = []
    for found in scan_inbox(inbox) if inbox.is_dir() else ():
        before = previous.get(found.doc_id)
        row = {
            "doc_id": found.doc_id,
            "source": layout.inbox_source(collection, found.doc_id),
            "size": found.size,
            "mtime_ns": found.mtime_ns,
            "content_hash": None,
            "status": "ok",
            "error": None,
            "text": None,
            "reuse": None,  # position of the previous row whose text this row keeps
        }
        same_file = (
            before is not None
            and before["status"] == "ok"
            and (before["size"], before["mtime_ns"]) == (found.size, found.mtime_ns)
        )
        if found.refused is None and same_file:
            # Size and mtime unchanged: trust the stored text instead of reading the file again.
            row.update(content_hash=before["content_hash"], reuse=before["position"], source=before["source"])
        else:
            row["source"] = document_source(layout, collection, found.doc_id)
            try:
                if found.refused:
                    raise DocumentError(found.refused)
                text = read_document(found.path, max_bytes=config.max_document_bytes)
            except DocumentError as error:
                row.update(status="failed", error=error.reason)
                counts["failed"] += 1
                failures.append((found.doc_id, error.reason))
                rows.append(row)
                continue
            row.update(content_hash=hashlib.sha256(text.encode()).hexdigest(), text=text)
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
        warehouse.write(collection, DOCUMENTS_FILE, _documents_table(warehouse, collection, rows))
    for doc_id, reason in failures[:50]:
        context.log.warning(f"document {doc_id!r} failed: {reason}")
    context.log.info(
        f"{collection}: {len(rows)} documents ({counts['added']} added, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {len(deleted)} deleted, {counts['failed']} failed)"
    )
    return dg.MaterializeResult(
        metadata={
            **counts,
            "deleted": len(deleted),
            "documents": len(rows) - counts["failed"],
            "rewritten": rewritten,
            "seconds": round(time.perf_counter() - started, 3),
            "failures": dg.MetadataValue.md(_failure_table(failures)),
            "dagster/row_count": len(rows),
        }
    )


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
