"""The small exception tree every embedder raises, with messages a user can act on."""


class EmbedderError(Exception):
    """Base of every error an embedder raises."""


class EmbedderUnavailable(EmbedderError):
    """The server could not be reached or kept failing (connection errors, 5xx, 503 busy) after retries."""


class CircuitOpenError(EmbedderUnavailable):
    """Calls fail fast because the host failed repeatedly; it is tried again after a cool-down."""


class ModelNotFound(EmbedderError):
    """The server answered 404 for the model: it has to be pulled first."""

    def __init__(self, model: str, host: str = ""):
        where = f" on {host}" if host else ""
        super().__init__(f"model '{model}' is not available{where}; run `ollama pull {model}` and try again")
        self.model = model
        self.host = host


class EmbedderBadRequest(EmbedderError):
    """The server refused the request itself (400); retrying the same request cannot help."""


class ContextLengthExceeded(EmbedderBadRequest):
    """An input is longer than the model's context and `truncate` was off."""


class InvalidResponse(EmbedderError):
    """The server answered, but not with what the protocol promises (bad JSON, wrong count, NaN, zero vectors)."""


class StreamError(EmbedderBadRequest):
    """A streamed answer (HTTP 200, e.g. `/api/pull`) carried an `{"error": ...}` line: the server's message."""
