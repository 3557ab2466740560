"""Where OrcaSettings read their values: the process environment over a `.env` file, or a given mapping.

A `.env` file in the working directory is loaded into the process environment once, before the first
settings are read, without overriding anything already set: environment variables win. Loading it into the
environment (rather than into the settings alone) lets every reader see it, as Dagster's own commands do:
boto3 reads its AWS_* variables there, and the processes Orca starts inherit it.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import load_dotenv
from pydantic_settings import EnvSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

ENV_FILE = ".env"

# `OrcaSettings.from_env(mapping)` reads this mapping instead of os.environ, for the duration of the call.
given_environ: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("orca_environ", default=None)


def load_env_file(folder: Path | None = None) -> Path | None:
    """Load `folder`/.env (default: the working directory) under the environment; the file, if there was one."""
    path = (folder or Path.cwd()) / ENV_FILE
    if not path.is_file():
        return None
    load_dotenv(path, override=False)
    return path


class EnvironSource(EnvSettingsSource):
    """The process environment, or the mapping `OrcaSettings.from_env` was given."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = given_environ.get()
        return parse_env_vars(
            os.environ if environ is None else environ, self.case_sensitive, self.env_ignore_empty,
            self.env_parse_none_str,
        )
