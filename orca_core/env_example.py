"""`.env.example`: every setting of OrcaSettings with its default and meaning, written from the model itself.

`python -m orca_core.env_example > .env.example` refreshes the file; a test keeps the two equal, so a new
setting cannot be missing from it.
"""

from __future__ import annotations

import textwrap

from pydantic_core import PydanticUndefined

from orca_core.settings import OrcaSettings, env_name

HEADER = """\
# Orca's settings. Copy this file to `.env` in the folder you run Orca from and uncomment what you change:
# every command (`orca`, `python -m orca_intake`, the processes `orca up` starts) reads it, and variables set
# in the environment win over it. Unset, each setting takes the default shown.
"""
# Defaults computed from other settings, as the README's configuration table says them.
DERIVED = {
    "dagster_home": "$ORCA_HOME/dagster",
    "webserver_url": "http://127.0.0.1:$ORCA_WEBSERVER_PORT",
    "intake_db_url": "sqlite:///$ORCA_HOME/intake/queue.db",
}


def default_text(name: str) -> str:
    field = OrcaSettings.model_fields[name]
    if name in DERIVED:
        return DERIVED[name]
    if field.default is PydanticUndefined or field.default is None:
        return ""
    if isinstance(field.default, tuple):
        return ",".join(field.default)
    if isinstance(field.default, bool):
        return str(field.default).lower()
    return str(field.default)


def render() -> str:
    lines = [HEADER]
    for name, field in OrcaSettings.model_fields.items():
        lines += [f"# {line}" for line in textwrap.wrap(field.description or "", 110)]
        lines += [f"# {env_name(name)}={default_text(name)}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
