"""The Ollama stand-in's model catalogue: installed models, their vectors and context, `/api/tags` and `/api/show`."""

from __future__ import annotations

import hashlib

import numpy as np

from tests.ollama_standin_http import _Model, canonical, token_count


class ModelsMixin:
    """Installed models and what the server says about them; mixed into `OllamaStandIn`."""

    def add_model(
        self, name: str, *, dimensions: int | None = None, context_length: int | None = None, digest: str | None = None
    ) -> None:
        key = canonical(name)
        self._models[key] = _Model(
            dimensions=dimensions or self.dimensions,
            context_length=context_length or self.context_length,
            digest=digest or hashlib.sha256(key.encode()).hexdigest(),
            architecture=self.architecture,
        )

    def has_model(self, name: str) -> bool:
        return canonical(name) in self._models

    def remove_model(self, name: str) -> None:
        self._models.pop(canonical(name), None)

    def set_digest(self, name: str, digest: str) -> None:
        self._models[canonical(name)].digest = digest

    def vector_for(self, model: str, text: str, dimensions: int | None = None) -> np.ndarray:
        """The unit float32 vector /api/embed returns for `text` as sent (prefix included)."""
        full = self._models[canonical(model)].dimensions
        seed = hashlib.sha256(f"{canonical(model)}\x00{text}".encode()).digest()
        vec = np.random.default_rng(int.from_bytes(seed[:8], "little")).standard_normal(full)
        if dimensions and dimensions < full:
            vec = vec[:dimensions]
        return (vec / np.linalg.norm(vec)).astype(np.float32)

    def truncated(self, text: str, model: str | None = None) -> str:
        """`text` as the server cuts it when `truncate` is on and it exceeds the real context."""
        limit = self._context_tokens(self._models[canonical(model)] if model else next(iter(self._models.values())))
        if token_count(text) <= limit:
            return text
        return text.encode("utf-8")[: limit * 4].decode("utf-8", errors="ignore")

    def _context_tokens(self, model: _Model) -> int:
        return self.real_context_tokens if self.real_context_tokens is not None else model.context_length

    def _find(self, payload: dict) -> tuple[_Model | None, str]:
        name = payload.get("model") or payload.get("name") or ""
        return self._models.get(canonical(name)) if name else None, name

    @staticmethod
    def _not_found(name: str) -> tuple[int, dict]:
        return 404, {"error": f'model "{name}" not found, try pulling it first'}

    def _tags(self) -> tuple[int, dict]:
        models = [
            {
                "name": key, "model": key, "modified_at": m.modified_at, "size": 274302450, "digest": m.digest,
                "details": {"parent_model": "", "format": "gguf", "family": m.architecture,
                            "families": [m.architecture], "parameter_size": "137M", "quantization_level": "F16"},
            }
            for key, m in self._models.items()
        ]
        return 200, {"models": models}

    def _show(self, payload: dict) -> tuple[int, dict]:
        model, name = self._find(payload)
        if model is None:
            return self._not_found(name)
        arch = model.architecture
        return 200, {
            "license": "Apache License 2.0", "modelfile": f"FROM {name}", "parameters": "num_ctx 8192",
            "template": "{{ .Prompt }}", "modified_at": model.modified_at,
            "details": {"parent_model": "", "format": "gguf", "family": arch, "families": [arch],
                        "parameter_size": "137M", "quantization_level": "F16"},
            "model_info": {
                "general.architecture": arch, "general.parameter_count": 136727040,
                f"{arch}.context_length": model.context_length, f"{arch}.embedding_length": model.dimensions,
                f"{arch}.attention.head_count": 12, f"{arch}.block_count": 12,
            },
            "capabilities": ["embedding"],
        }
