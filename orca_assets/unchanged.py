"""What a step found when it last verified its output against its inputs, to spare an unchanged run the reading.

A step that has checked, by reading its inputs, that its output is up to date records that verdict beside the
output: `warehouse/<collection>/<step>.verified.json` holds the key it was checked under (what the inputs and
the output were: the identities of their files, settings, the model) and the figures the step reports. The
next run that finds the very same key reports those figures instead of reading the data again; any other key,
or a missing or unreadable record, means reading as before. The record is only a cache: a lost one costs a
read, a stale one cannot match, because every file in the key is named by its inode, size and mtime, and each
write replaces a file by a rename (a new inode).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from orca_core.layout import VERIFIED_SUFFIX


def file_identity(path: Path) -> list[int] | None:
    """The file's inode, size and mtime (a rewritten file differs in at least one), or None when absent."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return [info.st_ino, info.st_size, info.st_mtime_ns]


def _record_path(folder: Path, step: str) -> Path:
    return folder / f"{step}{VERIFIED_SUFFIX}"


def recall(folder: Path, step: str, key: list[Any]) -> dict | None:
    """The figures recorded for `step` under exactly `key`, or None (read the inputs instead)."""
    try:
        record = json.loads(_record_path(folder, step).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key or not isinstance(record.get("figures"), dict):
        return None
    return record["figures"]


def remember(folder: Path, step: str, key: list[Any], figures: dict) -> None:
    """Record that `step`'s output is up to date under `key`, with the figures it reported (atomically; no
    fsync: a record lost in a crash only costs the next run a read)."""
    target = _record_path(folder, step)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "figures": figures}))
    os.replace(tmp, target)


def forget(folder: Path, step: str) -> None:
    """Drop the record (the step is about to rewrite its output, or found something it must retry)."""
    _record_path(folder, step).unlink(missing_ok=True)
