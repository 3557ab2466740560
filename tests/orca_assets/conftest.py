"""Fixtures shared by the asset tests."""

from __future__ import annotations

import dagster as dg
import pytest

from tests.pipeline_helpers import Pipeline


@pytest.fixture
def pipeline(tmp_path) -> Pipeline:
    """The `docs` collection's pipeline on a temporary ORCA_HOME and an ephemeral instance."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    return Pipeline(home=tmp_path / "orca", collection="docs", instance=instance)
