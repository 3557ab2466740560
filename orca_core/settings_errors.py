"""How an invalid setting is told: the variable, its value (hidden when secret) and what fits."""

from __future__ import annotations

from collections.abc import Callable, Collection

from pydantic import ValidationError


def describe(error: ValidationError, fields: Collection[str], env_name: Callable[[str], str],
             secret_fields: Collection[str]) -> str:
    """'ORCA_INTAKE_MAX_DOCUMENTS='many': Input should be a valid integer' for each invalid variable."""
    lines = []
    for problem in error.errors(include_url=False):
        if problem["type"] == "default_factory_not_called":
            continue  # a default derived from a value that is itself invalid: that value's error says it
        field = str(problem["loc"][0]) if problem["loc"] else ""
        name = env_name(field) if field in fields else field
        message = problem["msg"].removeprefix("Value error, ")
        shown = "<hidden>" if field in secret_fields else repr(problem["input"])
        lines.append(f"{name}={shown}: {message}" if field else message)
    return "; ".join(lines)
