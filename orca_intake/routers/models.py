"""`GET /v1/models`: the embedding model this intake serves, in OpenAI's shape, as Ollama's OpenAI-compatible
API lists models (`{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}`).

With Ollama, the entry is the configured model as the server's `/api/tags` names it (`nomic-embed-text:latest`),
`created` is its `modified_at` and `owned_by` its namespace (`library` for the official models), exactly as
Ollama answers; the model must be present, or the answer is a 503 saying to pull it. The offline `hashing`
embedder is listed under its name, owned by `orca`, with `created` 0 (it is not a file with a date).
`POST /v1/embeddings` accepts the listed id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel

from orca_core.embedder import Embedder
from orca_core.model_names import same_model
from orca_intake.dependencies import EmbedderDep
from orca_intake.errors import ERROR_RESPONSES, ErrorBody, NotFound
from orca_resources.ollama_client import OllamaClient

router = APIRouter(prefix="/v1", tags=["models"])

OFFLINE_OWNER = "orca"


class Model(BaseModel):
    """One model, as OpenAI (and Ollama's OpenAI-compatible API) describes it."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    """OpenAI's list shape."""

    object: Literal["list"] = "list"
    data: list[Model]


def _owner(name: str) -> str:
    """Ollama's `owned_by`: the namespace of `[registry/][namespace/]model[:tag]`, `library` when none."""
    parts = name.split(":", 1)[0].split("/")
    return parts[-2] if len(parts) >= 2 else "library"


def _tags_entry(model: str):
    def parse(tags: Any) -> tuple[str, int]:
        entries = tags.get("models") if isinstance(tags, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            name = (entry.get("name") or entry.get("model") or "") if isinstance(entry, dict) else ""
            if isinstance(name, str) and name and same_model(name, model):
                try:
                    created = int(datetime.fromisoformat(entry.get("modified_at") or "").timestamp())
                except (TypeError, ValueError):
                    created = 0  # a server that leaves the date out still lists the model
                return name, created
        return model, 0  # model_info() found it a moment ago: listed under the configured name

    return parse


def served_model(embedder: Embedder) -> Model:
    """The configured model; raises the embedder's error (a 503) when Ollama cannot serve it."""
    info = embedder.model_info()
    if isinstance(embedder, OllamaClient):
        _, (name, created) = embedder.http.request("GET", "/api/tags", parse=_tags_entry(info.name))
        return Model(id=name, created=created, owned_by=_owner(name))
    return Model(id=info.name, created=0, owned_by=OFFLINE_OWNER)


@router.get(
    "/models", summary="List models (OpenAI-compatible)", responses={401: ERROR_RESPONSES[401], 503: {"model": ErrorBody}}
)
def list_models(embedder: EmbedderDep) -> ModelList:
    """The embedding model this intake serves (one entry); 503 when Ollama is unreachable or lacks it."""
    return ModelList(data=[served_model(embedder)])


@router.get(
    "/models/{model:path}",
    summary="Retrieve a model (OpenAI-compatible)",
    responses={401: ERROR_RESPONSES[401], 404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
def get_model(
    model: Annotated[str, Path(max_length=200, description="A model id, e.g. `nomic-embed-text:latest`.")],
    embedder: EmbedderDep,
) -> Model:
    """The served model when `model` names it (a name without a tag means `:latest`); 404 otherwise."""
    served = served_model(embedder)
    if not same_model(model, served.id):
        raise NotFound(f"model {model!r} is not served here; this intake serves {served.id!r}", code="model_not_found")
    return served
