"""Orca's configuration: one typed model of every environment variable, its default and its meaning.

Each field is one variable: `ORCA_` plus the field name in capitals (`intake_port` is `ORCA_INTAKE_PORT`),
except `ollama_host` (`OLLAMA_HOST`) and `dagster_home` (`DAGSTER_HOME`), which keep the names those tools
use. An empty variable counts as unset. The CLI, the intake, the Dagster definitions and the sensors each
build `OrcaSettings` once when they start and pass the object along; nothing writes it back into the
environment to parse it again (child processes get `child_environ()`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from orca_core.formats import MAX_TEXT_BYTES
from orca_core.layout import LocalLayout
from orca_core.settings_errors import describe
from orca_core.settings_sources import EnvironSource, given_environ, load_env_file
from orca_core.storage import Storage, check_storage_url, open_storage

ENV_PREFIX = "ORCA_"
# Fields whose variable is not ORCA_<FIELD>: the names Ollama's and Dagster's own tools read.
FOREIGN_NAMES = {"ollama_host": "OLLAMA_HOST", "dagster_home": "DAGSTER_HOME"}
EmbedderName = Literal["ollama", "hashing"]
EMBEDDERS: tuple[str, ...] = get_args(EmbedderName)

PositiveInt = Annotated[int, Field(ge=1)]
# A guessable token or secret opens the intake to anyone: refused at start, not accepted silently.
MIN_TOKEN_CHARS = 16
MIN_SECRET_BYTES = 32
MAKE_SECRET = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
RATE_LIMIT_OFF = ("", "off", "0", "none")  # ORCA_INTAKE_RATE_LIMIT values that mean no limit
SECRET_FIELDS = frozenset({"intake_tokens", "intake_jwt_secret", "pgvector_url"})  # never repeated in an error message


class SettingsError(ValueError):
    """A variable holds a value Orca cannot use; the message names the variable and says what fits."""


def env_name(field: str) -> str:
    """The environment variable behind a settings field."""
    return FOREIGN_NAMES.get(field) or f"{ENV_PREFIX}{field.upper()}"


def split_hosts(value: str) -> list[str]:
    """`OLLAMA_HOST` may list several servers, comma-separated; a bare host:port gets http://."""
    hosts = []
    for raw in value.split(","):
        host = raw.strip().rstrip("/")
        if host:
            hosts.append(host if "://" in host else f"http://{host}")
    return hosts


class OrcaSettings(BaseSettings):
    """Every setting of Orca (see the README's configuration table). Paths are absolute once built."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", frozen=True,
    )

    # -- where state lives ----------------------------------------------------------------------------
    home: Path = Field(Path(".orca"), description="Root of all local state: inbox, warehouse, intake queue, Dagster home.")
    dagster_home: Path = Field(
        default_factory=lambda data: LocalLayout(data["home"]).default_dagster_home,
        validation_alias=AliasChoices("DAGSTER_HOME"), description="Dagster instance folder ($ORCA_HOME/dagster).",
    )
    storage_url: Annotated[str | None, AfterValidator(check_storage_url)] = Field(
        None, description="Where `inbox/` and `warehouse/` live: unset for ORCA_HOME, or `s3://bucket/prefix` for an "
        "object store (endpoint and credentials from the standard AWS_* variables).",
    )
    # -- embedding ------------------------------------------------------------------------------------
    ollama_host: str = Field(
        "http://localhost:11434", validation_alias=AliasChoices("OLLAMA_HOST"),
        description="Ollama base URL; a comma-separated list spreads work over several servers.",
    )
    embed_model: str = Field("nomic-embed-text", description="Embedding model name as Ollama knows it.")
    embedder: EmbedderName = Field(
        "ollama", description="`ollama`, or `hashing` (offline and deterministic, for demos and tests)."
    )
    # -- processes `orca up` starts -------------------------------------------------------------------
    intake_host: str = Field("127.0.0.1", description="Where the REST intake listens.")
    intake_port: int = Field(8000, ge=0, le=65535, description="The REST intake's port.")
    webserver_port: int = Field(3000, ge=0, le=65535, description="Where `orca up` serves the Dagster webserver.")
    webserver_url: str = Field(
        default_factory=lambda data: f"http://127.0.0.1:{data['webserver_port']}",
        description="The webserver as users reach it, for run links (http://127.0.0.1:<port>).",
    )
    code_server_port: int = Field(
        0, ge=0, le=65535,
        description="Port of the Dagster code server `orca up` shares between webserver and daemon; 0: a free one.",
    )
    # -- the REST intake ------------------------------------------------------------------------------
    intake_db_url: str = Field(
        default_factory=lambda data: LocalLayout(data["home"]).queue_url,
        description="SQLAlchemy URL of the intake queue (SQLite under ORCA_HOME).",
    )
    intake_tokens: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Comma-separated bearer tokens; unset: loopback only, no token."
    )
    intake_jwt_secret: str | None = Field(None, description="HS256 secret that signs accepted JWTs.")
    intake_jwks_url: str | None = Field(None, description="JWKS URL whose keys sign accepted JWTs.")
    intake_jwt_audience: str | None = Field(None, description="Required `aud` of a JWT.")
    intake_jwt_issuer: str | None = Field(None, description="Required `iss` of a JWT.")
    intake_jwt_max_lifetime: PositiveInt = Field(
        86400, description="Seconds a JWT may still be valid for (its numeric `exp` at most this far ahead)."
    )
    intake_trust_loopback: bool = Field(
        True, description="Without tokens, serve callers on this machine; off behind a local reverse proxy."
    )
    intake_forwarded_allow_ips: str | None = Field(
        None, description="Proxies whose X-Forwarded-For is believed (comma-separated IPs); unset: never."
    )
    intake_cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Comma-separated browser origins allowed to call the intake (with tokens); unset: none."
    )
    intake_operations_access: Literal["token", "terse"] = Field(
        "token", description="With tokens: /health/detailed and /metrics need one (`token`) or tell anyone less (`terse`)."
    )
    intake_rate_limit: str = Field(
        "50/second;1000/minute",
        description="Requests each caller (token, JWT subject or address) may send to /v1, per intake; `off` for none.",
    )
    intake_header_timeout: PositiveInt = Field(
        10, description="Seconds a request's line and headers may take to arrive (408 and closed after)."
    )
    intake_body_timeout: PositiveInt = Field(
        60, description="Seconds a request's body may take to arrive (408 after), so a slow sender holds a slot briefly."
    )
    intake_max_connections: PositiveInt = Field(500, description="Connections the intake serves at once; more get 503.")
    intake_max_body_bytes: PositiveInt = Field(32 * 1024 * 1024, description="Largest request body.")
    intake_max_documents: PositiveInt = Field(1000, description="Most documents (or inputs) in one request.")
    intake_max_text_bytes: PositiveInt = Field(
        MAX_TEXT_BYTES, description="Largest plain-text document (PDF, Office: 100 MiB); the run reads no more."
    )
    max_collections: PositiveInt = Field(
        1000, description="Collections there may be; a post or a folder that would add one more is refused."
    )
    # -- the pgvector sink ----------------------------------------------------------------------------
    pgvector_url: str | None = Field(
        None, repr=False,  # a URL may carry a password
        description="PostgreSQL URL (with the `vector` extension) that receives each collection as a table; "
        "unset: no pgvector sink.",
    )
    pgvector_schema: str = Field("orca", description="Schema of the pgvector tables (one per collection).")
    # -- schedules and sensors ------------------------------------------------------------------------
    reindex_cron: str = Field("0 3 * * *", description="When the reindex schedule runs.")
    timezone: str = Field("UTC", description="IANA time zone of the reindex schedule.")
    inbox_follow_symlinks: bool = Field(
        False, description="Index collection folders that are symbolic links (off: refused, with a warning)."
    )
    inbox_sweep_ticks: PositiveInt = Field(
        8, description="The inbox sensor re-stats every file at least once in this many ticks."
    )
    freshness_minutes: PositiveInt = Field(
        60, description="Minutes an inbox change may wait for its collection's index before the freshness check warns."
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, **_: PydanticBaseSettingsSource
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment (or `from_env`'s mapping; orca_core/settings_sources.py)."""
        return init_settings, EnvironSource(settings_cls)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OrcaSettings:
        """Read the environment, over a `.env` file in the working directory (or only `environ`, when given);
        SettingsError naming the variable when a value is invalid."""
        if environ is None:
            load_env_file()
        token = given_environ.set(environ)
        try:
            return cls()
        except ValidationError as error:
            raise SettingsError(describe(error, cls.model_fields, env_name, SECRET_FIELDS)) from None
        finally:
            given_environ.reset(token)

    @field_validator("embedder", mode="before")
    @classmethod
    def _embedder_name(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() not in EMBEDDERS:
            raise ValueError(f"must be one of {', '.join(map(repr, EMBEDDERS))}, not {value!r}")
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("intake_tokens", "intake_cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return tuple(t.strip() for t in value.split(",") if t.strip()) if isinstance(value, str) else value

    @field_validator(
        "intake_jwt_secret", "intake_jwks_url", "intake_jwt_audience", "intake_jwt_issuer", "intake_forwarded_allow_ips",
        "pgvector_url", "storage_url", mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return (value.strip() or None) if isinstance(value, str) else value

    @field_validator("intake_tokens")
    @classmethod
    def _long_tokens(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(len(token) < MIN_TOKEN_CHARS for token in value):
            raise ValueError(f"every token must be at least {MIN_TOKEN_CHARS} characters; {MAKE_SECRET}")
        return value

    @field_validator("intake_jwt_secret")
    @classmethod
    def _long_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode("utf-8")) < MIN_SECRET_BYTES:
            raise ValueError(f"an HS256 secret must be at least {MIN_SECRET_BYTES} bytes; {MAKE_SECRET}")
        return value

    @field_validator("intake_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse_many  # only where the intake's settings are checked

        if value.strip().lower() not in RATE_LIMIT_OFF:
            try:
                parse_many(value)
            except ValueError:
                raise ValueError("is not a rate like `50/second;1000/minute` (or `off`)") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known IANA time zone (for example UTC or Europe/Paris)") from None
        return value.strip()

    @field_validator("home", "dagster_home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()  # so child processes, whatever their working folder, agree

    @field_validator("webserver_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    # -- what the settings imply ----------------------------------------------------------------------
    @property
    def layout(self) -> LocalLayout:
        """Where every file under ORCA_HOME lives."""
        return LocalLayout(self.home, follow_symlinks=self.inbox_follow_symlinks)

    @property
    def storage(self) -> Storage:
        """The store behind the local copy (orca_core/storage.py): ORCA_HOME itself, or an object store."""
        return open_storage(self.storage_url, self.home)

    @property
    def ollama_hosts(self) -> list[str]:
        return split_hosts(self.ollama_host)

    @property
    def intake_auth_enabled(self) -> bool:
        """True when intake callers must present a token (static or JWT); otherwise only loopback is served."""
        return bool(self.intake_tokens or self.intake_jwt_secret or self.intake_jwks_url)

    def run_url(self, run_id: str | None) -> str | None:
        """The Dagster webserver page of a run, once the run exists."""
        return f"{self.webserver_url}/runs/{run_id}" if run_id else None

    def child_environ(self) -> dict[str, str]:
        """The environment for processes Orca starts: this one, with these settings (paths absolute) over it."""
        env = dict(os.environ)
        env.update(self.as_environ())
        return env

    def as_environ(self) -> dict[str, str]:
        """These settings as environment variables (unset optional ones left out)."""
        return dict(_as_environ(self))


def _as_environ(settings: OrcaSettings) -> Iterator[tuple[str, str]]:
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        yield env_name(name), ",".join(value) if isinstance(value, tuple) else str(value)
