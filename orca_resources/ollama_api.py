"""What Ollama's names and answers mean: model names, `/api/tags`, `/api/show` and `/api/embed` bodies.

Pure functions over decoded JSON, so every caller (the client, model management, `orca up`) reads an answer
the same way and none of them needs a server to be tested.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from orca_core.model_names import base_model_name, same_model
from orca_resources.errors import InvalidResponse

__all__ = ["KNOWN_PREFIXES", "RETRIEVAL_QUERY", "ModelShape", "base_model_name", "check_vectors", "digest_in_tags",
           "same_model", "shape_from_show"]

RETRIEVAL_QUERY = "Represent this sentence for searching relevant passages: "
# (document prefix, query prefix) the model cards ask for; vectors without them retrieve noticeably worse.
KNOWN_PREFIXES: dict[str, tuple[str, str]] = {
    "nomic-embed-text": ("search_document: ", "search_query: "),
    "mxbai-embed-large": ("", RETRIEVAL_QUERY),
    "snowflake-arctic-embed": ("", RETRIEVAL_QUERY),
}


def digest_in_tags(tags: Any, model: str) -> str | None:
    """The digest `model` has in an `/api/tags` answer, or None when the answer does not list it.

    Raises InvalidResponse when the body is not a tags answer at all: then nobody can tell whether the
    model is there, and "not pulled" would be a guess.
    """
    entries = tags.get("models") if isinstance(tags, dict) else None
    if not isinstance(entries, list):
        raise InvalidResponse("answered /api/tags without a 'models' list")
    for entry in entries:
        if isinstance(entry, dict) and same_model(entry.get("name") or entry.get("model") or "", model):
            return str(entry.get("digest", ""))
    return None


@dataclass(frozen=True)
class ModelShape:
    """What `/api/show` says about the model: architecture, vector length, context length and capabilities."""

    architecture: str
    embedding_length: int | None
    context_length: int | None
    capabilities: tuple[str, ...] | None  # None when the server is too old to report them


def shape_from_show(show: Any) -> ModelShape:
    """The `ModelShape` in an `/api/show` answer; fields the answer lacks are None (or "" for the architecture)."""
    body = show if isinstance(show, dict) else {}
    info = body.get("model_info") or {}
    if not isinstance(info, dict):
        info = {}
    arch = str(info.get("general.architecture", ""))
    length = info.get(f"{arch}.embedding_length")
    context = info.get(f"{arch}.context_length")
    capabilities = body.get("capabilities")
    return ModelShape(
        architecture=arch,
        embedding_length=length if isinstance(length, int) else None,
        context_length=context if isinstance(context, int) else None,
        capabilities=tuple(map(str, capabilities)) if isinstance(capabilities, list) else None,
    )


def check_vectors(data: Any, count: int, dims: int) -> np.ndarray:
    """The (count, dims) float32 vectors of an /api/embed answer, or InvalidResponse saying what is wrong."""
    vectors = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(vectors, list):
        raise InvalidResponse("answered /api/embed without an 'embeddings' list")
    if len(vectors) != count:
        raise InvalidResponse(f"returned {len(vectors)} vectors for {count} inputs")
    lengths = {len(vector) if isinstance(vector, list) else -1 for vector in vectors}
    if len(lengths) > 1 or -1 in lengths:
        raise InvalidResponse("returned vectors that are not equal-length lists of numbers")
    if lengths and (length := lengths.pop()) != dims:
        raise InvalidResponse(f"returned {length}-dimensional vectors, expected {dims}")
    try:
        # One pass over the floats straight into float32: a third cheaper than np.asarray of the nested lists,
        # which first works out their shape (same conversions: numbers, numeric strings, None as NaN).
        flat = np.fromiter(itertools.chain.from_iterable(vectors), dtype=np.float32, count=count * dims)
    except (TypeError, ValueError) as exc:
        raise InvalidResponse(f"returned vectors that are not equal-length lists of numbers ({exc})") from exc
    array = flat.reshape(count, dims)
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad.size:
        raise InvalidResponse(f"returned NaN/infinite values in {bad.size} of {count} vectors (seen under load)")
    zero = np.flatnonzero(np.linalg.norm(array, axis=1) < 1e-6)
    if zero.size:
        raise InvalidResponse(f"returned {zero.size} all-zero vector(s) of {count} (seen under load)")
    return array
