"""`POST /v1/embeddings`: an OpenAI-compatible embeddings endpoint backed by the configured embedder.

Inputs are embedded as documents, with the model's document prefix (`search_document: ` for
nomic-embed-text), exactly as the pipeline embeds chunks, so the vectors are comparable with a collection's
index. To embed a search query, use `/v1/search` (which applies the query prefix).
"""

from __future__ import annotations

import base64
from typing import Literal

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from orca_core.model_names import same_model
from orca_core.tokens import estimate_tokens
from orca_intake.dependencies import EmbedderDep, SettingsDep
from orca_intake.errors import JSON_BODY_ERROR_RESPONSES, ErrorBody, InvalidInput, NotFound, PayloadTooLarge
from orca_intake.json_body import BoundedJSONRoute

router = APIRouter(prefix="/v1", tags=["embeddings"], route_class=BoundedJSONRoute)


class EmbeddingsRequest(BaseModel):
    """OpenAI's request shape; `user` and other unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    input: str | list[str] = Field(description="A text or a list of texts (token arrays are not supported).")
    model: str = Field(description="Must name the configured model (see `GET /health/detailed`).")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1, description="Must equal the model's dimensions when given.")


class Embedding(BaseModel):
    """The vector of the input at `index`."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32 values.")


class Usage(BaseModel):
    """Token counts, estimated as the chunker estimates them (orca_core/tokens.py; embedders report none)."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    """OpenAI's response shape: one embedding per input, in input order."""

    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


def _texts(body: EmbeddingsRequest, max_inputs: int, max_bytes: int) -> list[str]:
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts:
        raise InvalidInput("input must contain at least one text", code="invalid_input")
    if len(texts) > max_inputs:
        raise PayloadTooLarge(f"{len(texts)} inputs in one request; the limit is {max_inputs}", code="too_many_inputs")
    for index, text in enumerate(texts):
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidInput(f"input[{index}] is not valid Unicode (lone surrogate)", code="invalid_input") from None
        if not text.strip():
            raise InvalidInput(f"input[{index}] is empty", code="invalid_input")
        if size > max_bytes:
            raise PayloadTooLarge(f"input[{index}] is {size} bytes; the limit is {max_bytes}", code="input_too_large")
    return texts


def _encode(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # OpenAI's base64: the little-endian float32 bytes
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return vector.tolist()


@router.post(
    "/embeddings",
    summary="Create embeddings (OpenAI-compatible)",
    responses={**JSON_BODY_ERROR_RESPONSES, 404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
def create_embeddings(body: EmbeddingsRequest, settings: SettingsDep, embedder: EmbedderDep) -> EmbeddingsResponse:
    """Embed the inputs as documents with the configured model; 404 when `model` names another model."""
    texts = _texts(body, settings.intake_max_documents, settings.intake_max_text_bytes)
    info = embedder.model_info()
    if not same_model(body.model, info.name):
        raise NotFound(
            f"model {body.model!r} is not served here; this intake embeds with {info.name!r}", code="model_not_found"
        )
    if body.dimensions is not None and body.dimensions != info.dimensions:
        raise InvalidInput(
            f"dimensions={body.dimensions} is not available: {info.name} here produces {info.dimensions}",
            code="invalid_dimensions",
        )
    batches = [texts[i : i + embedder.batch_size] for i in range(0, len(texts), embedder.batch_size)]
    vectors: list[np.ndarray] = []
    for offset, outcome in zip(range(0, len(texts), embedder.batch_size), embedder.embed_batches(batches), strict=True):
        if outcome.failed:
            first = min(outcome.failed)
            raise InvalidInput(f"input[{offset + first}]: {outcome.failed[first]}", code="input_too_long")
        vectors.extend(np.asarray(outcome.vectors, dtype=np.float32))
    data = [Embedding(index=i, embedding=_encode(v, body.encoding_format)) for i, v in enumerate(vectors)]
    tokens = sum(map(estimate_tokens, texts))
    return EmbeddingsResponse(data=data, model=info.name, usage=Usage(prompt_tokens=tokens, total_tokens=tokens))
