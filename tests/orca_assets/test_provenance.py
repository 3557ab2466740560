"""Where each chunk came from: section, page, title and metadata flow from a document into its index rows."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from orca_core.layout import SOURCES_DIR, source_record
from orca_resources.hashing_embedder import HashingEmbedderResource
from tests.pipeline_helpers import Pipeline, failure_message, metadata

GUIDE = """---
title: Field guide
team: infra
---
# Install

Orca installs from a clean clone with one command.

## Linux

Use the package manager of your distribution to install Python first.

## Mac

Homebrew brings Python; then run make up.
"""


@pytest.fixture
def pipeline(tmp_path) -> Pipeline:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    return Pipeline(home=tmp_path / "orca", collection="docs", instance=instance)


def rows_by_phrase(pipeline: Pipeline) -> dict[str, dict]:
    rows = pipeline.index().to_pylist()
    return {phrase: next(r for r in rows if phrase in r["text"]) for phrase in ("one command", "package manager", "Homebrew")}


def test_sections_title_and_metadata_reach_the_index(pipeline):
    (pipeline.inbox / "guide.md").write_text(GUIDE)
    record = pipeline.inbox / source_record("guide.md")
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"request_id": "r1", "metadata": {"team": "platform", "owner": "ada"}}))
    result = pipeline.run(HashingEmbedderResource(dimensions=16), chunk_tokens=24)
    assert result.success, failure_message(result)
    found = rows_by_phrase(pipeline)
    assert found["one command"]["section"] == "Install"
    assert found["package manager"]["section"] == "Install > Linux"
    assert found["Homebrew"]["section"] == "Install > Mac"
    for row in found.values():
        assert row["title"] == "Field guide" and row["page"] is None
        # Front matter first, then what was posted with the document: the caller's value wins.
        assert json.loads(row["metadata"]) == {"team": "platform", "owner": "ada"}
    assert "title: Field guide" not in " ".join(pipeline.index()["text"].to_pylist())  # front matter is no text
    assert (pipeline.inbox / SOURCES_DIR).is_dir()


def test_new_metadata_alone_updates_the_rows_without_embedding_again(pipeline):
    (pipeline.inbox / "guide.md").write_text(GUIDE)
    embedder = HashingEmbedderResource(dimensions=16)
    assert pipeline.run(embedder, chunk_tokens=24).success
    (pipeline.inbox / "guide.md").write_text(GUIDE.replace("team: infra", "team: data"))
    result = pipeline.run(embedder, chunk_tokens=24)
    assert result.success, failure_message(result)
    assert metadata(result, "documents")["updated"] == 1
    assert metadata(result, "embeddings")["inputs_sent"] == 0  # same chunk texts: their vectors are reused
    assert {json.loads(m)["team"] for m in pipeline.index()["metadata"].to_pylist()} == {"data"}
