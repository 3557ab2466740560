"""`orca search`: rank a collection's index against a query, as a table or as JSON.

The ranking itself is `orca_core.search`, shared with the REST intake's `/v1/search`; the query is embedded
by the embedder that built the index when it is available here (orca_resources/query_embedder.py).
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orca_core.search import SearchError, SearchResult, SearchRow
from orca_core.search_filter import SearchFilter
from orca_core.settings import OrcaSettings
from orca_resources.embedders import build_embedder
from orca_resources.errors import EmbedderError
from orca_resources.search_backend import search_collection

SNIPPET_CHARS = 160


def search(
    settings: OrcaSettings, collection: str, query: str, k: int, where: SearchFilter | None = None
) -> SearchResult:
    """The `k` best chunks of `collection` for `query` among those `where` keeps; SearchError (with what to
    do) when it cannot answer."""
    embedder = build_embedder(settings)  # the embedder the runs use: one factory chooses it for both
    try:
        return search_collection(settings, embedder, collection, query, k, where)
    except EmbedderError as error:
        raise SearchError(f"could not embed the query: {error}") from error
    finally:
        embedder.close()


def as_json(found: SearchResult, collection: str, query: str) -> dict:
    """The answer of `orca search --json`: the shape of the intake's `POST /v1/search`, plus the query."""
    return {"collection": collection, "query": query, "model": found.model, "embedder": found.embedder,
            "results": found.results}  # fmt: skip


def embedder_note(found: SearchResult, settings: OrcaSettings) -> str | None:
    """A line saying the query went to another embedder than ORCA_EMBEDDER names (the one that built the index)."""
    if not found.embedder or found.embedder == settings.embedder:
        return None
    return f"The query was embedded by {found.model} ({found.embedder}), the embedder that built this index."


def snippet(text: str, width: int = SNIPPET_CHARS) -> str:
    """`text` on one line, cut to `width` characters."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def where(hit: SearchRow) -> str:
    """Title, section and page of a hit on one line: `Field guide · Install > Linux · p. 3`."""
    parts = [hit["title"], hit["section"], f"p. {hit['page']}" if hit["page"] else None]
    return " · ".join(part for part in parts if part) or f"chunk {hit['chunk_index']}"


def render_hits(hits: list[SearchRow], collection: str, query: str, console: Console) -> None:
    """Print the hits as a table, best first."""
    if not hits:
        console.print(f"No results: no chunk of '{collection}' matches (an empty index, or a filter nothing meets).")
        return
    table = Table(title=Text(f"{collection}: {query}"), title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("doc_id", overflow="fold")
    table.add_column("where", overflow="fold")
    table.add_column("text", overflow="fold")
    for number, hit in enumerate(hits, start=1):
        # Text(): document names and contents are data, never rich markup.
        table.add_row(
            str(number), f"{hit['score']:.3f}", Text(hit["doc_id"]), Text(where(hit)), Text(snippet(hit["text"]))
        )
    console.print(table)
