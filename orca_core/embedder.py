"""The interface every embedder offers, so assets and the CLI never care which one they talk to."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

InputKind = Literal["document", "query"]


@dataclass(frozen=True)
class ModelInfo:
    """What an embedder is: everything that, when it changes, makes old vectors stale."""

    name: str
    digest: str
    dimensions: int
    context_length: int
    document_prefix: str = ""
    query_prefix: str = ""
    normalized: bool = True

    @property
    def identity(self) -> str:
        """A short hash of name, digest, dimensions and document prefix: part of every embedding's cache key."""
        payload = json.dumps(
            [self.name, self.digest, self.dimensions, self.document_prefix], ensure_ascii=False
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def prefix_for(self, kind: InputKind) -> str:
        return self.document_prefix if kind == "document" else self.query_prefix


@dataclass
class BatchOutcome:
    """The vectors of one batch, aligned with its inputs.

    `vectors` has one float32 row per input; rows listed in `failed` hold zeros and must not be used.
    `truncated` lists inputs the server embedded after cutting them to the model's context.
    """

    vectors: np.ndarray
    failed: dict[int, str] = field(default_factory=dict)
    truncated: set[int] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.vectors)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors.

    Implemented by the plain `OllamaClient` and `HashingEmbedder`, and by the Dagster resources that wrap
    them, `OllamaResource` and `HashingEmbedderResource`.
    """

    # Callers form batches of this many texts and pass them to `embed_batches`.
    batch_size: int

    def model_info(self) -> ModelInfo:
        """Resolve (once, then cached) the model's name, digest, dimensions, context length and prefixes."""
        ...

    def embed_batches(
        self, batches: Iterable[Sequence[str]], kind: InputKind = "document"
    ) -> Iterator[BatchOutcome]:
        """Embed each batch (raw texts: the embedder adds the model's prefix) and yield outcomes in batch order.

        Implementations may keep several batches in flight, but never read more of `batches` than
        they have room for, so a caller can stream a large collection.
        """
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one search query with the model's query prefix."""
        ...
