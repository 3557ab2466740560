"""Which index answers a search: the collection's pgvector table when ORCA_PGVECTOR_URL is set, else the
served index's search copy (orca_core/ann: memory-mapped, HNSW), else the Parquet index itself (a warehouse
written before search copies existed, until its next run). `orca search` and `POST /v1/search` both call
`search_collection`; the answer has one shape whichever answers."""

from __future__ import annotations

import dataclasses

from orca_core.ann import open_search_copy, search_copy
from orca_core.embedder import Embedder
from orca_core.search import IndexNotFound, IndexUnreadable, SearchResult, load_index, search_index
from orca_core.search_filter import SearchFilter
from orca_core.settings import OrcaSettings
from orca_resources.query_embedder import query_embedder


def search_collection(
    settings: OrcaSettings, embedder: Embedder, collection: str, query: str, k: int, where: SearchFilter | None = None
) -> SearchResult:
    """The k best chunks of `collection` for `query`, embedded by the embedder that built the index when it is
    available here (orca_resources/query_embedder.py); IndexNotFound, ModelMismatch or the embedder's errors."""
    if not settings.pgvector_url:
        storage = settings.storage
        layout = storage.reader_layout(settings.layout)
        storage.refresh_index(layout, collection)  # an object store's current version, once per search
        copy = open_search_copy(layout.search_dir(collection))
        if copy is not None:
            models, dimensions = copy.models, copy.manifest.dimensions
        else:
            models, dimensions = _index_identity(layout.index_path(collection))
        chosen = query_embedder(settings, embedder, models, dimensions)
        if copy is not None:
            found = search_copy(copy, chosen.embedder, query, k, collection=collection, where=where)
        else:
            found = search_index(layout.index_path(collection), chosen.embedder, query, k,
                                 collection=collection, where=where)  # fmt: skip
        return dataclasses.replace(found, embedder=chosen.kind)
    import psycopg2  # only when a database is configured

    from orca_resources import pgvector_search, pgvector_sync

    try:
        conn = pgvector_sync.connect(settings.pgvector_url)
    except psycopg2.Error as error:
        raise IndexUnreadable(f"the pgvector database is unreachable: {_first_line(error)}") from None
    try:
        built = pgvector_search.table_model(conn, settings.pgvector_schema, collection)
        chosen = query_embedder(settings, embedder, (built,) if built else (), None)
        configured = chosen.embedder.model_info().name
        # The model is checked before the query is embedded: a mismatch costs no call to the embedder.
        if not pgvector_search.check_table_model(built, collection, configured):
            return SearchResult(configured, [], chosen.kind)
        vector = chosen.embedder.embed_query(query)
        found = pgvector_search.search_table(conn, settings.pgvector_schema, collection, vector, k, configured, where)
        return dataclasses.replace(found, embedder=chosen.kind)
    except psycopg2.Error as error:
        raise IndexUnreadable(f"the pgvector table of '{collection}' cannot be searched: {_first_line(error)}") from None
    finally:
        conn.close()


def _index_identity(path) -> tuple[tuple[str, ...], int | None]:
    """The models and dimensions of a Parquet index (loaded once and cached for the search that follows)."""
    try:
        index = load_index(path)
    except IndexNotFound:
        return (), None  # search_index says so, with what to do
    return index.models, (index.matrix.shape[1] if index.rows else None)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
