"""`orca collections`: what collections exist and what their served index holds, read from disk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orca_resources.settings import OrcaSettings, is_valid_collection
from orca_resources.warehouse import INDEX_FILE, read_parquet


@dataclass(frozen=True)
class CollectionInfo:
    """One collection as the inbox and the served index show it; index fields are None before the first run."""

    name: str
    inbox_files: int
    documents: int | None
    chunks: int | None
    model: str | None
    materialized_at: datetime | None


def _count_files(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(
        1
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def _names(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.is_dir() and is_valid_collection(p.name)}


def describe(settings: OrcaSettings, name: str) -> CollectionInfo:
    """Read one collection's inbox and index (only the small columns of the index)."""
    index = settings.warehouse / name / INDEX_FILE
    documents = chunks = model = materialized_at = None
    table = read_parquet(index, columns=["doc_id", "model"])
    if table is not None:
        chunks = table.num_rows
        documents = len(set(table["doc_id"].to_pylist()))
        models = sorted(set(table["model"].to_pylist()))
        model = ", ".join(models) if models else None
        # The index is replaced by one rename per successful run, so its mtime is the last publication.
        materialized_at = datetime.fromtimestamp(index.stat().st_mtime).astimezone()
    return CollectionInfo(name, _count_files(settings.inbox / name), documents, chunks, model, materialized_at)


def list_collections(settings: OrcaSettings) -> list[CollectionInfo]:
    """Every collection with an inbox folder or a warehouse folder, sorted by name."""
    names = _names(settings.inbox) | _names(settings.warehouse)
    return [describe(settings, name) for name in sorted(names)]


def render_collections(infos: list[CollectionInfo], settings: OrcaSettings, console: Console) -> None:
    """Print the collections as a table, or say where to put documents when there are none."""
    if not infos:
        console.print(
            f"No collections yet. Put documents into {settings.inbox}/<collection>/ "
            "and run `orca materialize <collection>`."
        )
        return
    table = Table(title=Text(f"Collections in {settings.home}"), title_justify="left")
    for column, justify in [("collection", "left"), ("inbox files", "right"), ("documents", "right"),
                            ("chunks", "right"), ("model", "left"), ("last materialized", "left")]:
        table.add_column(column, justify=justify)
    for info in infos:
        table.add_row(
            info.name,
            str(info.inbox_files),
            "–" if info.documents is None else str(info.documents),
            "–" if info.chunks is None else str(info.chunks),
            Text(info.model or "–"),
            info.materialized_at.strftime("%Y-%m-%d %H:%M:%S") if info.materialized_at else "never",
        )
    console.print(table)
