"""Hostile and unusual inbox inputs through a whole materialization.

Each case puts one bad (or merely unusual) file into a collection next to ordinary documents and materializes
`documents -> chunks -> embeddings -> embedding_index` with the offline hashing embedder. A bad file must be
recorded in `documents.parquet` as failed with a reason a user can act on, while the rest of the collection is
indexed; an unusual but valid one (deep folders, odd names) must be indexed under its exact id. The loaders'
own unit tests (tests/orca_core/test_loaders.py) cover the reasons in isolation; here they meet the scanner and the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

import orca_assets.extraction_pool as extraction_pool
from orca_assets.jobs import embedding_assets
from orca_resources.hashing_embedder import HashingEmbedderResource
from tests.documents_fixture import write_collection
from tests.pipeline_helpers import Pipeline, check_results, failure_message, metadata

GOOD = {"guide.md", "ports/harbour.txt", "bees.html", "volcano.json", "tokyo.txt"}
SECRET = "TOP-SECRET-OUTSIDE-THE-INBOX"


@pytest.fixture
def pipeline(tmp_path) -> Pipeline:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    pipe = Pipeline(home=tmp_path / "orca", collection="docs", instance=instance)
    write_collection(pipe.inbox)
    return pipe


def run(pipeline: Pipeline, max_document_bytes: int | None = None) -> dg.ExecuteInProcessResult:
    ops = {"documents": {"config": {"max_document_bytes": max_document_bytes}}} if max_document_bytes else {}
    result = dg.materialize(
        embedding_assets,
        partition_key=pipeline.collection,
        instance=pipeline.instance,
        resources={"embedder": HashingEmbedderResource(dimensions=32), "warehouse": pipeline.warehouse},
        run_config={"ops": ops},
        raise_on_error=False,
    )
    assert result.success, failure_message(result)
    assert all(check_results(result).values()), check_results(result)
    return result


def statuses(pipeline: Pipeline) -> dict[str, tuple[str, str | None]]:
    table = pq.read_table(pipeline.home / "warehouse" / pipeline.collection / "documents.parquet")
    return {row["doc_id"]: (row["status"], row["error"]) for row in table.to_pylist()}


def indexed_docs(pipeline: Pipeline) -> set[str]:
    return set(pipeline.index()["doc_id"].to_pylist())


def assert_refused(pipeline: Pipeline, result, doc_id: str, reason_fragment: str) -> str:
    """`doc_id` is recorded failed with a reason containing the fragment; every good document is indexed."""
    status, reason = statuses(pipeline)[doc_id]
    assert status == "failed"
    assert reason_fragment in reason, reason
    assert indexed_docs(pipeline) == GOOD
    assert metadata(result, "documents")["failed"] == 1
    assert metadata(result, "documents")["added"] == len(GOOD)
    return reason


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        pytest.param("blob.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", "binary content", id="binary"),
        pytest.param("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "not valid UTF-8", id="invalid-utf8"),
        pytest.param("empty.md", b"", "empty document", id="empty"),
        pytest.param("blank.txt", b"  \n\t\n", "empty document", id="whitespace-only"),
        pytest.param("broken.json", b'{"text": "unterminated', "JSON", id="invalid-json"),
        pytest.param("image.png", b"\x89PNG", "unsupported file type '.png'", id="unsupported-type"),
    ],
)
def test_bad_content_is_recorded_with_its_reason_and_the_rest_indexed(pipeline, name, content, fragment):
    (pipeline.inbox / name).write_bytes(content)
    result = run(pipeline)
    assert_refused(pipeline, result, name, fragment)


def test_file_over_the_size_limit_is_refused_without_being_read(pipeline, monkeypatch):
    big = pipeline.inbox / "huge.txt"
    big.write_text("word " * 2_000, encoding="utf-8")  # 10,000 bytes, over the 4,000 below
    opened: list[str] = []
    real_open = Path.open

    def watching_open(self, *args, **kwargs):
        opened.append(self.name)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", watching_open)
    result = run(pipeline, max_document_bytes=4_000)
    reason = assert_refused(pipeline, result, "huge.txt", "larger than 4000 bytes")
    assert "10000 bytes" in reason
    assert "huge.txt" not in opened  # refused from its size alone


def test_sixty_levels_of_folders_are_indexed_under_the_full_id(pipeline):
    folder = pipeline.inbox
    parts = [f"d{level}" for level in range(60)]
    folder = folder.joinpath(*parts)
    folder.mkdir(parents=True)
    (folder / "deep.txt").write_text("The deepest note in the archive talks about moles.", encoding="utf-8")
    run(pipeline)
    deep_id = "/".join([*parts, "deep.txt"])
    assert statuses(pipeline)[deep_id] == ("ok", None)
    assert indexed_docs(pipeline) == GOOD | {deep_id}
    index = pipeline.index().to_pylist()
    assert [row["text"] for row in index if row["doc_id"] == deep_id] == [
        "The deepest note in the archive talks about moles."
    ]


def test_symbolic_links_out_of_the_inbox_are_never_followed(pipeline, tmp_path):
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "secret.txt").write_text(f"{SECRET} file", encoding="utf-8")
    (outside / "folder" / "inner.txt").write_text(f"{SECRET} folder", encoding="utf-8")
    (pipeline.inbox / "link.txt").symlink_to(outside / "secret.txt")
    (pipeline.inbox / "linked-folder").symlink_to(outside / "folder", target_is_directory=True)
    (pipeline.inbox / "ports" / "escape.txt").symlink_to(Path("..", "..", "..", "..", "outside", "secret.txt"))

    result = run(pipeline)
    found = statuses(pipeline)
    for doc_id in ("link.txt", "linked-folder", "ports/escape.txt"):
        status, reason = found[doc_id]
        assert status == "failed" and "symbolic link pointing outside the inbox" in reason
    assert not any(doc_id.startswith("linked-folder/") for doc_id in found)
    assert indexed_docs(pipeline) == GOOD
    assert metadata(result, "documents")["failed"] == 3
    # The targets' text reached neither the warehouse tables nor the index.
    for parquet in (pipeline.home / "warehouse" / "docs").glob("*.parquet"):
        assert SECRET.encode() not in parquet.read_bytes(), parquet.name
    assert not any(SECRET in text for text in pipeline.index()["text"].to_pylist())


def test_names_with_spaces_newlines_and_other_scripts_are_indexed_under_their_names(pipeline):
    names = {
        "meeting notes 2024.txt": "Minutes of the harbour board meeting.",
        "line\nbreak.txt": "A file whose name holds a newline.",
        "ελληνικά/σημειώσεις.txt": "Σημειώσεις για τα λιμάνια.",
        "日本語 ファイル.md": "港の記録です。",
        "עברית.txt": "רשימות על הנמל.",
        "emoji-🐝.txt": "Bees again.",
    }
    for doc_id, text in names.items():
        path = pipeline.inbox / doc_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    run(pipeline)
    assert indexed_docs(pipeline) == GOOD | set(names)
    rows = pipeline.index().to_pylist()
    for doc_id, text in names.items():
        assert [row["text"] for row in rows if row["doc_id"] == doc_id] == [text]
        assert [row["source"] for row in rows if row["doc_id"] == doc_id] == [f"inbox/docs/{doc_id}"]


def test_a_file_deleted_between_listing_and_reading_is_recorded_unreadable(pipeline, monkeypatch):
    doomed = pipeline.inbox / "doomed.txt"
    doomed.write_text("This note will be gone before it is read.", encoding="utf-8")
    real_read = extraction_pool.read_document

    def read_after_a_delete(path, **kwargs):
        if Path(path).name == "doomed.txt":
            os.unlink(path)  # another process removes it after the scan listed it
        return real_read(path, **kwargs)

    monkeypatch.setattr(extraction_pool, "read_document", read_after_a_delete)
    result = run(pipeline)
    reason = assert_refused(pipeline, result, "doomed.txt", "unreadable")
    assert "No such file" in reason


def test_a_file_without_read_permission_is_recorded_unreadable(pipeline, monkeypatch):
    locked = pipeline.inbox / "locked.txt"
    locked.write_text("Nobody may read this note.", encoding="utf-8")
    locked.chmod(0)
    # Tests run as root, whom mode 000 does not stop: refuse the open as the kernel would for anyone else.
    real_open = Path.open

    def open_as_unprivileged(self, *args, **kwargs):
        if self.name == "locked.txt" and self.stat().st_mode & 0o444 == 0:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_as_unprivileged)
    result = run(pipeline)
    reason = assert_refused(pipeline, result, "locked.txt", "unreadable: [Errno 13] Permission denied")
    assert str(pipeline.home) not in reason  # the reason does not leak absolute paths


def test_a_refused_file_fixed_later_is_indexed_by_the_next_run(pipeline):
    bad = pipeline.inbox / "later.txt"
    bad.write_bytes(b"\xff\xfe\x00broken")
    run(pipeline)
    assert statuses(pipeline)["later.txt"][0] == "failed"
    bad.write_text("Now a proper note about lighthouses.", encoding="utf-8")
    second = run(pipeline)
    assert statuses(pipeline)["later.txt"] == ("ok", None)
    assert indexed_docs(pipeline) == GOOD | {"later.txt"}
    assert metadata(second, "documents")["added"] == 1
