"""Shared pytest fixtures. Each block belongs to one area; add yours in its own delimited block."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

# ---- Ollama stand-in fixtures (owner: OllamaResource) -------------------------------------------
try:  # works whether or not tests/ becomes a package
    from tests.ollama_standin import OllamaStandIn
except ImportError:
    from ollama_standin import OllamaStandIn


@pytest.fixture
def ollama_standin() -> Iterator[OllamaStandIn]:
    """A started Ollama stand-in with `nomic-embed-text` (64 dims), stopped after the test."""
    with OllamaStandIn() as standin:
        yield standin


@pytest.fixture
def ollama_standin_factory() -> Iterator[Callable[..., OllamaStandIn]]:
    """Start extra stand-ins (same keyword arguments as OllamaStandIn); all are stopped after the test."""
    started: list[OllamaStandIn] = []

    def make(**kwargs) -> OllamaStandIn:
        standin = OllamaStandIn(**kwargs).start()
        started.append(standin)
        return standin

    yield make
    for standin in started:
        standin.stop()


# ---- end of Ollama stand-in fixtures ------------------------------------------------------------
