"""`orca collections`: what collections exist and what their served index holds (orca_core/catalog.py), as a table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orca_core.catalog import CollectionInfo
from orca_core.settings import OrcaSettings


def render_collections(infos: list[CollectionInfo], settings: OrcaSettings, console: Console) -> None:
    """Print the collections as a table, or say where to put documents when there are none."""
    if not infos:
        console.print(
            f"No collections yet. Put documents into {settings.layout.inbox_root}/<collection>/ "
            "and run `orca materialize <collection>`."
        )
        return
    table = Table(title=Text(f"Collections in {settings.home}"), title_justify="left")
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
