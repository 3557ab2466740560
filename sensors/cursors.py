"""Sensor cursors that carry their format's version: what an older (or damaged) cursor reads as."""

from __future__ import annotations

import json


def read_versioned(raw: str | None, version: int) -> dict:
    """The cursor's JSON object when it is of `version`, else {}: a sensor starts over rather than misread it."""
    try:
        state = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return state if isinstance(state, dict) and state.get("v") == version else {}
