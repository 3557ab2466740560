"""`orca collections`: what collections exist and what their served index holds (orca_core/catalog.py), as a
table, or as one JSON object for scripts (`--json`):

    {"location": "<ORCA_HOME or the object store's URL>",
     "collections": [{"name": str, "inbox_documents": int,
                      "index": null | {"documents": int, "chunks": int, "model": str | null,
                                       "updated_at": "<ISO 8601, UTC>"}}]}

`index` is null before a collection's first run; collections are sorted by name.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orca_core.catalog import CollectionInfo
from orca_core.settings import OrcaSettings


def render_collections(infos: list[CollectionInfo], settings: OrcaSettings, console: Console) -> None:
    """Print the collections as a table, or say where to put documents when there are none."""
    storage = settings.storage
    if not infos:
        # With an object store, documents go to its inbox (the intake, or objects put there), not ORCA_HOME's copy.
        where = f"{storage.url.rstrip('/')}/inbox" if storage.remote else settings.layout.inbox_root
        console.print(
            f"No collections yet. Put documents into {where}/<collection>/ and run `orca materialize <collection>`."
        )
        return
    where = storage.url if storage.remote else settings.home
    table = Table(title=Text(f"Collections in {where}"), title_justify="left")
    for column, justify in [("collection", "left"), ("inbox files", "right"), ("documents", "right"),
                            ("chunks", "right"), ("model", "left"), ("last materialized", "left")]:
        table.add_column(column, justify=justify)
    for info in infos:
        index = info.index
        table.add_row(
            info.name,
            str(info.inbox_documents),
            "–" if index is None else str(index.documents),
            "–" if index is None else str(index.chunks),
            Text(index.model if index and index.model else "–"),
            index.updated_at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if index else "never",
        )
    console.print(table)


def collections_json(infos: list[CollectionInfo], settings: OrcaSettings) -> dict:
    """The collections as the JSON object `orca collections --json` prints (its shape is in the module docstring)."""
    storage = settings.storage
    return {
        "location": storage.url if storage.remote else str(settings.home),
        "collections": [
            {
                "name": info.name,
                "inbox_documents": info.inbox_documents,
                "index": None if info.index is None else {
                    "documents": info.index.documents, "chunks": info.index.chunks, "model": info.index.model,
                    "updated_at": info.index.updated_at.isoformat(),
                },
            }
            for info in infos
        ],
    }
