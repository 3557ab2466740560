"""Orca's environment contract (see the README's configuration table) read in one place.

Nothing here runs at import time: callers build `OrcaSettings.from_env()` when they start.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

COLLECTION_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

DEFAULTS: dict[str, str] = {
    "ORCA_HOME": ".orca",
    "OLLAMA_HOST": "http://localhost:11434",
    "ORCA_EMBED_MODEL": "nomic-embed-text",
    "ORCA_EMBEDDER": "ollama",
    "ORCA_INTAKE_HOST": "127.0.0.1",
    "ORCA_INTAKE_PORT": "8000",
    "ORCA_WEBSERVER_PORT": "3000",
    # The REST intake (orca_intake). An empty value means "derived" (queue URL, webserver URL) or "off" (auth).
    "ORCA_INTAKE_DB_URL": "",
    "ORCA_WEBSERVER_URL": "",
    "ORCA_INTAKE_TOKENS": "",
    "ORCA_INTAKE_JWT_SECRET": "",
    "ORCA_INTAKE_JWKS_URL": "",
    "ORCA_INTAKE_JWT_AUDIENCE": "",
    "ORCA_INTAKE_JWT_ISSUER": "",
    "ORCA_INTAKE_MAX_BODY_BYTES": str(32 * 1024 * 1024),
    "ORCA_INTAKE_MAX_DOCUMENTS": "1000",
    "ORCA_INTAKE_MAX_TEXT_BYTES": str(10 * 1024 * 1024),  # the documents asset's per-file limit
}


def is_valid_collection(name: str) -> bool:
    return COLLECTION_NAME.fullmatch(name) is not None


def check_collection(name: str) -> str:
    """Return `name` when it is a valid collection name, else raise ValueError saying what is allowed."""
    if not is_valid_collection(name):
        raise ValueError(
            f"invalid collection name {name!r}: use 1-63 characters from a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return name


def split_hosts(value: str) -> list[str]:
    """`OLLAMA_HOST` may list several servers, comma-separated; a bare host:port gets http://."""
    hosts = []
    for raw in value.split(","):
        host = raw.strip().rstrip("/")
        if not host:
            continue
        if "://" not in host:
            host = f"http://{host}"
        hosts.append(host)
    return hosts


@dataclass(frozen=True)
class OrcaSettings:
    """Resolved configuration; paths are absolute so child processes agree on them."""

    home: Path
    dagster_home: Path
    ollama_host: str
    embed_model: str
    embedder: str
    intake_host: str
    intake_port: int
    webserver_port: int
    # Shared by the intake (writes) and the intake sensor (reads); "" until from_env() fills in the default.
    intake_db_url: str = ""
    webserver_url: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OrcaSettings:
        from orca_resources.intake_queue import default_queue_url  # SQLAlchemy only when settings are built

        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name) or DEFAULTS[name]

        home = Path(get("ORCA_HOME")).expanduser().resolve()
        dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster").expanduser().resolve()
        embedder = get("ORCA_EMBEDDER").strip().lower()
        if embedder not in ("ollama", "hashing"):
            raise ValueError(f"ORCA_EMBEDDER must be 'ollama' or 'hashing', not {embedder!r}")
        return cls(
            home=home,
            dagster_home=dagster_home,
            ollama_host=get("OLLAMA_HOST"),
            embed_model=get("ORCA_EMBED_MODEL"),
            embedder=embedder,
            intake_host=get("ORCA_INTAKE_HOST"),
            intake_port=int(get("ORCA_INTAKE_PORT")),
            webserver_port=int(get("ORCA_WEBSERVER_PORT")),
            intake_db_url=env.get("ORCA_INTAKE_DB_URL") or default_queue_url(home),
            webserver_url=(
                env.get("ORCA_WEBSERVER_URL") or f"http://127.0.0.1:{int(get('ORCA_WEBSERVER_PORT'))}"
            ).rstrip("/"),
        )

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    def child_environ(self) -> dict[str, str]:
        """The environment for processes Orca starts, with every path made absolute."""
        env = dict(os.environ)
        env.update(
            ORCA_HOME=str(self.home),
            DAGSTER_HOME=str(self.dagster_home),
            OLLAMA_HOST=self.ollama_host,
            ORCA_EMBED_MODEL=self.embed_model,
            ORCA_EMBEDDER=self.embedder,
        )
        return env
