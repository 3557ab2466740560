"""Which index answers a search: the collection's pgvector table when ORCA_PGVECTOR_URL is set, else the
served index's search copy (orca_core/ann: memory-mapped, HNSW), else the Parquet index itself (a warehouse
written before search copies existed, until its next run). `orca search` and `POST /v1/search` both call
`search_collection`; the answer has one shape whichever answers."""

from __future__ import annotations

from orca_core.ann import open_search_copy, search_copy
from orca_core.embedder import Embedder
from orca_core.search import IndexUnreadable, SearchResult, search_index
from orca_core.search_filter import SearchFilter
from orca_core.settings import OrcaSettings


def search_collection(
    settings: OrcaSettings, embedder: Embedder, collection: str, query: str, k: int, where: SearchFilter | None = None
) -> SearchResult:
    """The k best chunks of `collection` for `query`; IndexNotFound, ModelMismatch or the embedder's errors."""
    if not settings.pgvector_url:
        storage = settings.storage
        layout = storage.reader_layout(settings.layout)
        storage.refresh_index(layout, collection)  # an object store's current version, once per search
        copy = open_search_copy(layout.search_dir(collection))
        if copy is not None:
            return search_copy(copy, embedder, query, k, collection=collection, where=where)
        return search_index(layout.index_path(collection), embedder, query, k, collection=collection,
                            where=where)  # fmt: skip
    import psycopg2  # only when a database is configured

    from orca_resources import pgvector_search, pgvector_sync

    configured = embedder.model_info().name
    try:
        conn = pgvector_sync.connect(settings.pgvector_url)
    except psycopg2.Error as error:
        raise IndexUnreadable(f"the pgvector database is unreachable: {_first_line(error)}") from None
    try:
        # The model is checked before the query is embedded: a mismatch costs no call to the embedder.
        if not pgvector_search.check_table_model(conn, settings.pgvector_schema, collection, configured):
            return SearchResult(configured, [])
        vector = embedder.embed_query(query)
        return pgvector_search.search_table(conn, settings.pgvector_schema, collection, vector, k, configured, where)
    except psycopg2.Error as error:
        raise IndexUnreadable(f"the pgvector table of '{collection}' cannot be searched: {_first_line(error)}") from None
    finally:
        conn.close()


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
