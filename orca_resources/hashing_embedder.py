"""An offline, deterministic embedder: feature hashing of words and character 3-grams.

It needs no server and no model download, so demos, tests and benchmarks run anywhere; similar texts
(shared words and word pieces) get similar vectors, which is enough for search demos, not for quality.
`HashingEmbedder` is the plain object; `HashingEmbedderResource` wraps it for Dagster.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Optional

import dagster as dg
import numpy as np
from pydantic import Field, PrivateAttr

from orca_core.embedder import BatchOutcome, InputKind, ModelInfo

MODEL_NAME = "orca-hashing-v1"
ALGORITHM_VERSION = "1"  # bump whenever a vector for some text changes; it feeds the digest
CONTEXT_LENGTH = 8192
MIN_DIMENSIONS, MAX_DIMENSIONS = 8, 65536

_WORD = re.compile(r"\w+")
_TRIGRAM_WEIGHT = 0.5  # word pieces help near-spellings and unspaced scripts without drowning whole words
_SIGN_SHIFT = np.uint64(63)


@lru_cache(maxsize=1 << 18)
def _word_features(word: str, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns and signed weights of one word's features: the word itself and its bounded 3-grams."""
    marked = f"\x02{word}\x03"  # boundary markers make prefixes and suffixes features of their own
    features = [f"w\x1f{word}"] + [f"g\x1f{marked[i : i + 3]}" for i in range(max(1, len(marked) - 2))]
    hashes = np.fromiter(
        (int.from_bytes(hashlib.blake2b(f.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
         for f in features),
        dtype=np.uint64,
        count=len(features),
    )  # fmt: skip
    weights = np.full(len(features), _TRIGRAM_WEIGHT)
    weights[0] = 1.0
    # The top hash bit picks the sign, so colliding features tend to cancel instead of piling up.
    weights *= 1.0 - 2.0 * (hashes >> _SIGN_SHIFT).astype(np.float64)
    return (hashes % np.uint64(dims)).astype(np.int64), weights


def _fallback_column(text: str, dims: int) -> int:
    # A text without any word character (or whose features cancel out) still needs a stable, usable vector.
    digest = hashlib.blake2b(f"e\x1f{text.strip()}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % dims


class HashingEmbedder:
    """The offline `Embedder`: deterministic, L2-normalised feature-hashing vectors (`ORCA_EMBEDDER=hashing`)."""

    def __init__(self, dimensions: int = 768, batch_size: int = 256):
        if not MIN_DIMENSIONS <= dimensions <= MAX_DIMENSIONS:
            raise ValueError(f"dimensions must be between {MIN_DIMENSIONS} and {MAX_DIMENSIONS}, not {dimensions}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.dimensions = dimensions
        self.batch_size = batch_size

    def close(self) -> None:
        """Nothing to release; here so every embedder can be closed the same way."""

    def model_info(self) -> ModelInfo:
        """Name, a digest derived from algorithm version and dimensions, and the fixed context length."""
        digest = hashlib.sha256(f"{MODEL_NAME}:{ALGORITHM_VERSION}:{self.dimensions}".encode()).hexdigest()
        return ModelInfo(
            name=MODEL_NAME,
            digest=f"sha256:{digest}",
            dimensions=self.dimensions,
            context_length=CONTEXT_LENGTH,
            normalized=True,
        )

    def embed_batches(
        self, batches: Iterable[Sequence[str]], kind: InputKind = "document"
    ) -> Iterator[BatchOutcome]:
        """Yield one `BatchOutcome` per batch, in order, reading `batches` lazily; `kind` changes nothing."""
        for batch in batches:
            yield BatchOutcome(vectors=self.embed_texts(batch))

    def embed_query(self, text: str) -> np.ndarray:
        """The 1-D float32 vector of one query."""
        return self.embed_texts([text])[0]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), dimensions) float32 matrix of unit rows, one per text, in order."""
        dims, n = self.dimensions, len(texts)
        # Python touches each token once; everything per feature happens in numpy over the whole batch.
        all_tokens: list[str] = []
        token_counts = np.zeros(n, dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = _WORD.findall(unicodedata.normalize("NFKC", text).lower())
            all_tokens.extend(tokens)
            token_counts[row] = len(tokens)
        out = np.zeros(n * dims, dtype=np.float64)
        if all_tokens:
            words = list(dict.fromkeys(all_tokens))  # the batch's vocabulary, in first-seen order
            size = len(words)
            word_ids = dict(zip(words, range(size)))
            token_ids = np.fromiter(map(word_ids.__getitem__, all_tokens), dtype=np.int64, count=len(all_tokens))
            keys = np.repeat(np.arange(n, dtype=np.int64), token_counts) * size + token_ids
            pairs, counts = np.unique(keys, return_counts=True)  # (row, word) pairs and their term counts
            pair_rows, pair_words = np.divmod(pairs, size)
            tf = 1.0 + np.log(counts)  # sublinear tf: repetition counts, but less and less
            column_parts, value_parts = zip(*[_word_features(word, dims) for word in words])
            lengths = np.fromiter(map(len, column_parts), dtype=np.int64, count=size)
            offsets = np.concatenate(([0], np.cumsum(lengths)))
            columns = np.concatenate(column_parts)
            values = np.concatenate(value_parts)
            per_pair = lengths[pair_words]
            starts = np.repeat(offsets[pair_words] - (np.cumsum(per_pair) - per_pair), per_pair)
            index = starts + np.arange(int(per_pair.sum()), dtype=np.int64)
            flat = np.repeat(pair_rows * dims, per_pair) + columns[index]
            out = np.bincount(flat, weights=np.repeat(tf, per_pair) * values[index], minlength=n * dims)
        out = out.reshape(n, dims)
        norms = np.linalg.norm(out, axis=1)
        for row in np.flatnonzero(norms == 0):
            # No word characters at all (or features that cancel exactly): one deterministic unit feature.
            out[row, _fallback_column(texts[row], dims)] = 1.0
            norms[row] = 1.0
        return (out / norms[:, None]).astype(np.float32)


class HashingEmbedderResource(dg.ConfigurableResource):
    """The offline `Embedder` as a Dagster resource: delegates to a `HashingEmbedder` with these fields."""

    dimensions: int = Field(
        default=768, ge=MIN_DIMENSIONS, le=MAX_DIMENSIONS, description="Length of every vector."
    )
    batch_size: int = Field(default=256, ge=1, description="Texts per batch that callers should send.")

    _embedder: Optional[HashingEmbedder] = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.embedder()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def embedder(self) -> HashingEmbedder:
        """The embedder every call goes through: made in `setup_for_execution`, or on first use outside a run."""
        if self._embedder is None:
            self._embedder = HashingEmbedder(self.dimensions, self.batch_size)
        return self._embedder

    def close(self) -> None:
        """Drop the embedder; the next use makes a new one."""
        if self._embedder is not None:
            self._embedder.close()
            self._embedder = None

    def model_info(self) -> ModelInfo:
        """Name, a digest derived from algorithm version and dimensions, and the fixed context length."""
        return self.embedder().model_info()

    def embed_batches(
        self, batches: Iterable[Sequence[str]], kind: InputKind = "document"
    ) -> Iterator[BatchOutcome]:
        """Yield one `BatchOutcome` per batch, in order, reading `batches` lazily; `kind` changes nothing."""
        return self.embedder().embed_batches(batches, kind)

    def embed_query(self, text: str) -> np.ndarray:
        """The 1-D float32 vector of one query."""
        return self.embedder().embed_query(text)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), dimensions) float32 matrix of unit rows, one per text, in order."""
        return self.embedder().embed_texts(texts)
