"""The intake's configuration: `OrcaSettings` plus the intake's own fields, read once per process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from orca_resources.settings import DEFAULTS, OrcaSettings, check_collection


def _positive_int(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name) or DEFAULTS[name]
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of bytes or documents, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


def _optional(env: Mapping[str, str], name: str) -> str | None:
    return (env.get(name) or "").strip() or None


@dataclass(frozen=True)
class IntakeSettings:
    """Everything the intake needs: Orca's shared settings, auth, limits and where the webserver is."""

    orca: OrcaSettings
    tokens: tuple[str, ...] = ()
    jwt_secret: str | None = None
    jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    max_body_bytes: int = int(DEFAULTS["ORCA_INTAKE_MAX_BODY_BYTES"])
    max_documents: int = int(DEFAULTS["ORCA_INTAKE_MAX_DOCUMENTS"])
    max_text_bytes: int = int(DEFAULTS["ORCA_INTAKE_MAX_TEXT_BYTES"])

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IntakeSettings:
        """Read the environment (or `environ`); ValueError naming the variable when a value is invalid."""
        env = os.environ if environ is None else environ
        return cls(
            orca=OrcaSettings.from_env(env),
            tokens=tuple(t.strip() for t in (env.get("ORCA_INTAKE_TOKENS") or "").split(",") if t.strip()),
            jwt_secret=_optional(env, "ORCA_INTAKE_JWT_SECRET"),
            jwks_url=_optional(env, "ORCA_INTAKE_JWKS_URL"),
            jwt_audience=_optional(env, "ORCA_INTAKE_JWT_AUDIENCE"),
            jwt_issuer=_optional(env, "ORCA_INTAKE_JWT_ISSUER"),
            max_body_bytes=_positive_int(env, "ORCA_INTAKE_MAX_BODY_BYTES"),
            max_documents=_positive_int(env, "ORCA_INTAKE_MAX_DOCUMENTS"),
            max_text_bytes=_positive_int(env, "ORCA_INTAKE_MAX_TEXT_BYTES"),
        )

    @property
    def auth_enabled(self) -> bool:
        """True when callers must present a token (static or JWT); otherwise only loopback may be served."""
        return bool(self.tokens or self.jwt_secret or self.jwks_url)

    @property
    def queue_url(self) -> str:
        return self.orca.intake_db_url

    @property
    def inbox(self) -> Path:
        return self.orca.inbox

    def inbox_dir(self, collection: str) -> Path:
        return self.orca.inbox / check_collection(collection)

    def index_path(self, collection: str) -> Path:
        from orca_resources.warehouse import INDEX_FILE

        return self.orca.warehouse / check_collection(collection) / INDEX_FILE

    def run_url(self, run_id: str | None) -> str | None:
        """The Dagster webserver page of a run, once the run exists."""
        return f"{self.orca.webserver_url}/runs/{run_id}" if run_id else None


@lru_cache(maxsize=1)
def get_settings() -> IntakeSettings:
    """The process's settings, read from the environment once (tests override this dependency)."""
    return IntakeSettings.from_env()
