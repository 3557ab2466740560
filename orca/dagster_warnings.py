"""Dagster's notices for developers, silenced for the users of Orca's commands (`--verbose` keeps them)."""

from __future__ import annotations

import warnings


def quiet_dagster_warnings() -> None:
    """Dagster's beta/preview/deprecation notices are for the developers of this code, not its users."""
    import dagster as dg

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)
