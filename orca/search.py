"""`orca search`: embed a query with the configured embedder and rank a collection's index by cosine similarity."""

from __future__ import annotations

import os
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table
from rich.text import Text

from orca_resources.errors import EmbedderError
from orca_resources.settings import OrcaSettings
from orca_resources.warehouse import INDEX_FILE, read_parquet

SNIPPET_CHARS = 160


class SearchError(Exception):
    """A search that cannot be answered, with a message that says what to do."""


@dataclass(frozen=True)
class Hit:
    """One ranked chunk."""

    score: float
    doc_id: str
    chunk_index: int
    text: str


def load_index(settings: OrcaSettings, collection: str) -> pa.Table:
    """The served index of `collection`, or SearchError telling the user to materialize it first."""
    path = settings.warehouse / collection / INDEX_FILE
    table = read_parquet(path, columns=["doc_id", "chunk_index", "text", "embedding", "model"])
    if table is None:
        raise SearchError(
            f"collection '{collection}' has no index yet ({path} does not exist): "
            f"run `orca materialize {collection}` first"
        )
    return table


def embedding_matrix(table: pa.Table) -> np.ndarray:
    """The `embedding` column as an (rows, dimensions) float32 matrix; refuses ragged vectors."""
    column = table["embedding"].combine_chunks()
    lengths = set(pc.list_value_length(column).to_pylist())
    if len(lengths) > 1:
        raise SearchError(f"the index mixes vectors of {sorted(lengths)} dimensions: materialize it again")
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return values.reshape(table.num_rows, -1)


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Scale rows to unit length (not every embedder returns unit vectors); zero rows stay zero."""
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def same_model(a: str, b: str) -> bool:
    """Ollama treats `name` and `name:latest` as one model."""
    return a.removesuffix(":latest") == b.removesuffix(":latest")


def rank(table: pa.Table, query_vector: np.ndarray, k: int) -> list[Hit]:
    """The k rows most similar to `query_vector`, best first."""
    matrix = normalize_rows(embedding_matrix(table))
    query = normalize_rows(np.asarray(query_vector, dtype=np.float32).reshape(1, -1))[0]
    if matrix.shape[1] != query.shape[0]:
        raise SearchError(
            f"the query has {query.shape[0]} dimensions but the index has {matrix.shape[1]}: "
            "materialize the collection again with the configured model"
        )
    scores = matrix @ query
    top = np.argsort(-scores, kind="stable")[:k]
    doc_ids, positions, texts = (table[name].to_pylist() for name in ("doc_id", "chunk_index", "text"))
    return [Hit(float(scores[i]), doc_ids[i], int(positions[i]), texts[i]) for i in top]


def search(settings: OrcaSettings, collection: str, query: str, k: int) -> list[Hit]:
    """Rank `collection` against `query` with the configured embedder; SearchError when it cannot."""
    table = load_index(settings, collection)
    if table.num_rows == 0:
        return []
    os.environ.update(settings.child_environ())
    # The definitions pick the embedder from the environment, so search uses exactly what runs use.
    from orca.definitions import build_definitions

    resource = build_definitions().resources["embedder"]
    index_models = sorted(set(table["model"].to_pylist()))
    try:
        with dg.build_resources({"embedder": resource}) as resources:
            embedder = resources.embedder
            configured = embedder.model_info().name
            if len(index_models) != 1 or not same_model(index_models[0], configured):
                raise SearchError(
                    f"the index of '{collection}' was built with {', '.join(map(repr, index_models))} but the "
                    f"configured embedder uses '{configured}'; vectors of different models are not comparable. "
                    f"Run `orca materialize {collection}` to rebuild it with '{configured}', or configure the "
                    "index's model again (ORCA_EMBEDDER / ORCA_EMBED_MODEL)."
                )
            query_vector = embedder.embed_query(query)
    except EmbedderError as error:
        raise SearchError(f"could not embed the query: {error}") from error
    return rank(table, query_vector, k)


def snippet(text: str, width: int = SNIPPET_CHARS) -> str:
    """`text` on one line, cut to `width` characters."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def render_hits(hits: list[Hit], collection: str, query: str, console: Console) -> None:
    """Print the hits as a table, best first."""
    if not hits:
        console.print(f"The index of '{collection}' is empty: add documents to its inbox and materialize it.")
        return
    table = Table(title=Text(f"{collection}: {query}"), title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("doc_id", overflow="fold")
    table.add_column("chunk", justify="right")
    table.add_column("text", overflow="fold")
    for number, hit in enumerate(hits, start=1):
        # Text(): document names and contents are data, never rich markup.
        table.add_row(str(number), f"{hit.score:.3f}", Text(hit.doc_id), str(hit.chunk_index), Text(snippet(hit.text)))
    console.print(table)
