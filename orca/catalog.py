"""`orca collections`: what collections exist and what their served index holds (orca_core/catalog.py), as a table."""

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
