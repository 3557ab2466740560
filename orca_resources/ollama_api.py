"""What Ollama's names and answers mean: model names, `/api/tags`, `/api/show` and `/api/embed` bodies.

Pure functions over an answer's bytes or decoded JSON, so every caller (the client, model management, `orca up`)
reads an answer the same way and none of them needs a server to be tested.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import simdjson

from orca_core.model_names import base_model_name, same_model
from orca_resources.errors import InvalidResponse

__all__ = ["KNOWN_PREFIXES", "RETRIEVAL_QUERY", "ModelShape", "base_model_name", "check_vectors", "digest_in_tags",
           "json_body", "same_model", "shape_from_show", "vectors_from_answer"]

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


def json_body(body: bytes) -> Any:
    """An answer's JSON. orjson parses it about 3x faster than the standard library, but refuses the NaN literals a
    server under load has been seen to send; the standard parser reads those, so such an answer is refused for
    what it holds (check_vectors), not as malformed JSON."""
    try:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return json.loads(body)
    except ValueError as exc:
        raise InvalidResponse(f"answered with invalid JSON ({body[:80]!r}...)") from exc


def vectors_from_answer(body: bytes, count: int, dims: int) -> np.ndarray:
    """The (count, dims) float32 vectors of an /api/embed answer's bytes, or InvalidResponse saying what is wrong.

    simdjson (pysimdjson) reads the floats straight into one buffer of doubles, with no Python object per float:
    half the CPU of decoding the answer into lists and converting those (0.58 against 1.15 ms for 32 x 768), and
    the same float32 values. An answer it cannot take that way (the NaN literals of a server under load, which
    are not JSON; a missing field; a wrong shape or type) is decoded the general way and judged by check_vectors,
    which names what is wrong.
    """
    flat = _flat_vectors(body, count, dims)
    if flat is None:
        return check_vectors(json_body(body), count, dims)
    return _sound(flat.astype(np.float32).reshape(count, dims))


_parsers = threading.local()


def _parse(body: bytes) -> Any:
    """`body` parsed by this thread's simdjson parser, made once per thread and used again: a new parser per
    answer costs about 0.35 ms of 0.8 for 32 x 768 floats, as it allocates and faults in buffers the size of the
    answer. A parser cannot parse again while a value it gave out is still referenced, so only the copy
    `as_buffer` makes may leave `_flat_vectors`; should anything else still hold one, the thread takes a new one."""
    parser = getattr(_parsers, "parser", None)
    if parser is not None:
        try:
            return parser.parse(body)
        except RuntimeError:
            pass  # a value of its last answer is still referenced somewhere
    _parsers.parser = simdjson.Parser()
    return _parsers.parser.parse(body)


def _flat_vectors(body: bytes, count: int, dims: int) -> np.ndarray | None:
    """The answer's `count` x `dims` numbers as one flat float64 array, or None when they are not just that."""
    try:
        rows = _parse(body)["embeddings"]
        if not isinstance(rows, simdjson.Array) or len(rows) != count:
            return None
        if any(not isinstance(row, simdjson.Array) or len(row) != dims for row in rows):
            return None
        return np.frombuffer(rows.as_buffer(of_type="d"), dtype=np.float64)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError):
        return None


def check_vectors(data: Any, count: int, dims: int) -> np.ndarray:
    """The (count, dims) float32 vectors of a decoded /api/embed answer, or InvalidResponse saying what is wrong."""
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
    return _sound(flat.reshape(count, dims))


def _sound(array: np.ndarray) -> np.ndarray:
    """`array`, once every vector is finite and not all zero (both seen from servers under load)."""
    count = len(array)
    squares = np.einsum("ij,ij->i", array, array)  # one pass: a NaN or an infinity makes its vector's sum so
    if not np.isfinite(squares).all():
        bad = np.flatnonzero(~np.isfinite(array).all(axis=1))  # (or only huge values, which are no fault)
        if bad.size:
            raise InvalidResponse(f"returned NaN/infinite values in {bad.size} of {count} vectors (seen under load)")
    zero = np.flatnonzero(squares < 1e-12)  # a norm under 1e-6
    if zero.size:
        raise InvalidResponse(f"returned {zero.size} all-zero vector(s) of {count} (seen under load)")
    return array
