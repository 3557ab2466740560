"""What a local copy of a collection last matched on an object store (orca_core/s3_storage.py).

Two files under `$ORCA_HOME/sync/`: `<collection>.inbox.json` (each document's ETag and local size and mtime:
one entry per document, so it can be large) is written by pulls only; `<collection>.json` (the warehouse's
files, the pointer the copy last read, the served index it holds) is small, and rewritten after every
embedding batch a step uploads. Both are replaced by rename, never written in place.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from orca_core.layout import LocalLayout


def read_record(layout: LocalLayout, collection: str) -> dict:
    """The record (`{}` for a copy that never synced), with the inbox's part under "inbox"."""
    record = _read_json(layout.sync_record(collection))
    record["inbox"] = _read_json(_inbox_path(layout, collection))
    return record


def write_record(layout: LocalLayout, collection: str, record: dict, *, inbox: bool = False) -> None:
    """Save the record; its inbox part only when `inbox` (a pull changed it)."""
    _write_json(layout.sync_record(collection), {key: value for key, value in record.items() if key != "inbox"})
    if inbox:
        _write_json(_inbox_path(layout, collection), record.get("inbox", {}))


def remove_record(layout: LocalLayout, collection: str) -> None:
    layout.sync_record(collection).unlink(missing_ok=True)
    _inbox_path(layout, collection).unlink(missing_ok=True)


def _inbox_path(layout: LocalLayout, collection: str) -> Path:
    return layout.sync_record(collection).with_name(f"{collection}.inbox.json")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")  # unique per thread too
    tmp.write_text(json.dumps(value, sort_keys=True))
    os.replace(tmp, path)
