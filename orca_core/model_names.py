"""Embedding model names as Ollama writes them: `nomic-embed-text` is `nomic-embed-text:latest`."""

from __future__ import annotations


def base_model_name(name: str) -> str:
    """`registry/ns/nomic-embed-text:v1.5` -> `nomic-embed-text`."""
    return name.rsplit("/", 1)[-1].split(":", 1)[0]


def same_model(a: str, b: str) -> bool:
    """True when `a` and `b` name the same model (a name without a tag means its `:latest`)."""

    def canonical(name: str) -> str:
        return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"

    return canonical(a) == canonical(b)
