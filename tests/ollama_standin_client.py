"""An `OllamaClient` on Ollama stand-ins, for the tests/test_ollama_*.py files.

Backoff sleeps are recorded instead of slept, so those tests stay fast and check delays, not wall time.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from orca_core.embedder import BatchOutcome
from orca_resources.ollama_client import OllamaClient, OllamaConfig

MODEL = "nomic-embed-text"
DOC = "search_document: "
QUERY = "search_query: "
FAST_RETRIES = dict(backoff_initial=0.01, backoff_max=0.05)
TEXTS = [f"paragraph {i} about whales and krill" for i in range(10)]


def urls(*hosts) -> str:
    """OLLAMA_HOST for stand-ins and/or URLs."""
    return ",".join(h if isinstance(h, str) else h.url for h in hosts)


@contextmanager
def live(
    *hosts, clock: Callable[[], float] | None = None, **config
) -> Iterator[tuple[OllamaClient, list[float]]]:
    """A client on the given stand-ins (or URLs) whose backoff sleeps are recorded, not slept; closed after."""
    sleeps: list[float] = []
    settings = OllamaConfig(host=urls(*hosts), **{**FAST_RETRIES, **config})
    with OllamaClient(settings, sleep=sleeps.append, clock=clock) as client:
        yield client, sleeps


def batches_of(texts: list[str], size: int) -> list[list[str]]:
    return [texts[i : i + size] for i in range(0, len(texts), size)]


def embed_all(embedder, texts: list[str], size: int = 4) -> tuple[np.ndarray, list[BatchOutcome]]:
    """Every vector of `texts` embedded in batches of `size`, and the batches' outcomes."""
    outcomes = list(embedder.embed_batches(batches_of(texts, size)))
    return np.concatenate([o.vectors for o in outcomes]), outcomes


def expected(standin, texts: list[str], prefix: str = DOC) -> np.ndarray:
    """The vectors the stand-in gives for `texts` sent with `prefix`."""
    return np.stack([standin.vector_for(MODEL, prefix + t) for t in texts])


def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
