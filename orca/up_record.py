"""What a running `orca up` chose at start, for the commands run beside it: `$ORCA_HOME/up.json`.

Two things are settled only when `orca up` starts: the embedder (the offline one when no Ollama answered,
whatever ORCA_EMBEDDER says) and the code server's port (a free one unless ORCA_CODE_SERVER_PORT pins it).
`orca up` writes them here once its children serve and removes the file when it stops; a file left by an
`orca up` that was killed names a process that is gone, and is ignored.

While an `orca up` runs, its embedder is the one of this ORCA_HOME (`embedder_of`): its daemon's runs write the
indexes with it, so `orca status` reports it and `orca materialize` runs with it (`following_up`), instead of
asking an Ollama that `orca up` already found silent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from orca_core.settings import EMBEDDERS, OrcaSettings

RECORD_NAME = "up.json"


def record_path(settings: OrcaSettings) -> Path:
    return settings.home / RECORD_NAME


def write_record(settings: OrcaSettings, *, code_port: int) -> None:
    """Record this process's choices (`settings` as `orca up` runs with them), atomically."""
    path = record_path(settings)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "embedder": settings.embedder, "code_server_port": code_port}))
    tmp.replace(path)


def remove_record(settings: OrcaSettings) -> None:
    record_path(settings).unlink(missing_ok=True)


def read_record(settings: OrcaSettings) -> dict | None:
    """The record of the `orca up` running on this ORCA_HOME, or None (none runs, or the file is unreadable)."""
    try:
        record = json.loads(record_path(settings).read_text())
        os.kill(int(record["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if isinstance(record, dict) else None


def embedder_of(record: dict | None, settings: OrcaSettings) -> str:
    """The embedder in use on this ORCA_HOME: the one `record` (read_record's answer) names, else ORCA_EMBEDDER's."""
    chosen = record.get("embedder") if record else None
    return chosen if chosen in EMBEDDERS else settings.embedder


def following_up(settings: OrcaSettings) -> OrcaSettings:
    """`settings` with the embedder of the `orca up` running on this ORCA_HOME, when one runs."""
    embedder = embedder_of(read_record(settings), settings)
    return settings if embedder == settings.embedder else settings.model_copy(update={"embedder": embedder})
