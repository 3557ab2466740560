"""Hostile files in an inbox, staged for real: links in loops, links among the source records, FIFOs, names
that are not UTF-8, ids that would inject Markdown. Each bad entry fails alone, with a reason; nothing is
read, written or deleted through a link; nobody else sees an error.

The materializations run `orca materialize` as a real process (with a time limit, so a hang fails the test
instead of stalling it); the intake cases run `python -m orca_intake` as a real server on a real socket.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tests.orca_intake.test_intake_server import running_intake
from tests.processes import orca_env, run_cli

GOOD = {"guide.md": "# Guide\n\nHarbours shelter boats from storms.", "notes/bees.txt": "Bees make honey in hives."}


def write_inbox(home: Path, collection: str = "docs") -> Path:
    inbox = home / "inbox" / collection
    for doc_id, text in GOOD.items():
        (inbox / doc_id).parent.mkdir(parents=True, exist_ok=True)
        (inbox / doc_id).write_text(text, encoding="utf-8")
    return inbox


def documents_table(home: Path, collection: str = "docs") -> dict[str, tuple[str, str | None]]:
    table = pq.read_table(home / "warehouse" / collection / "documents.parquet")
    return {row["doc_id"]: (row["status"], row["error"]) for row in table.to_pylist()}


def indexed(home: Path, collection: str = "docs") -> set[str]:
    return set(pq.read_table(home / "warehouse" / collection / "embedding_index.parquet")["doc_id"].to_pylist())


def materialize(home: Path, collection: str = "docs"):
    result = run_cli(["materialize", collection], env=orca_env(home), timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_loops_fifos_and_bad_names_fail_alone_and_the_collection_is_indexed(tmp_path):
    home = tmp_path / "home"
    inbox = write_inbox(home)
    os.symlink("b.md", inbox / "a.md")  # a.md -> b.md -> a.md
    os.symlink("a.md", inbox / "b.md")
    os.symlink("loop", inbox / "loop")  # a folder link to itself
    os.mkfifo(inbox / "pipe.md")  # skipped: not a document
    os.symlink("pipe.md", inbox / "to-pipe.md")  # a link to it would block a reader
    (inbox / ".orca" / "sources" / "guide.md").mkdir(parents=True)
    os.mkfifo(inbox / ".orca" / "sources" / "guide.md" / "record.json")  # a FIFO where a source record is read
    (inbox / ".orca" / "sources" / "notes").mkdir()
    os.mkfifo(inbox / ".orca" / "sources" / "notes" / "bees.txt.json")  # and where older versions kept it
    (inbox / os.fsdecode(b"bad\xffname.md")).write_text("Not valid UTF-8 in its name.", encoding="utf-8")

    materialize(home)  # within the time limit: the FIFO record was not opened for a blocking read
    found = documents_table(home)
    assert found["guide.md"] == ("ok", None) and found["notes/bees.txt"] == ("ok", None)
    for doc_id in ("a.md", "b.md", "loop"):
        assert found[doc_id] == ("failed", "symbolic link loop (not followed)"), found[doc_id]
    assert found["to-pipe.md"] == ("failed", "symbolic link to a FIFO, socket or device (not read)")
    assert "pipe.md" not in found
    assert found["bad\\xffname.md"] == ("failed", "file name is not valid UTF-8; rename the file")
    assert indexed(home) == set(GOOD)


def test_ids_that_would_inject_markdown_are_escaped_in_the_failure_table(tmp_path):
    home = tmp_path / "home"
    inbox = write_inbox(home)
    hostile = "x`|[click](javascript:alert(1))<img src=y onerror=z>.bin"
    (inbox / hostile).write_text("not a supported type", encoding="utf-8")
    materialize(home)
    assert documents_table(home)[hostile][0] == "failed"

    import dagster as dg

    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("documents"))
    table = event.asset_materialization.metadata["failures"].value
    row = next(line for line in table.splitlines() if "javascript" in line)
    assert len(re.findall(r"(?<!\\)\|", row)) == 3, row  # the id's pipe is escaped: only the table's own three
    for raw in ("](javascript:", "<img", "`"):
        assert raw not in row.replace("\\`", ""), row
    assert "\\[click\\]\\(javascript:alert\\(1\\)\\)&lt;img" in row


@pytest.fixture
def intake(tmp_path):
    with running_intake(tmp_path) as (_, url):
        yield url, tmp_path / "home"


def test_source_records_are_never_written_read_or_deleted_through_a_link(intake, tmp_path):
    url, home = intake
    outside = tmp_path / "outside"
    outside.mkdir()
    inbox = home / "inbox" / "docs"
    inbox.mkdir(parents=True)
    os.symlink(outside, inbox / ".orca")  # the records folder points elsewhere
    post = httpx.post(f"{url}/v1/collections/docs/documents", json={"documents": [{"id": "a.md", "text": "A."}]})
    assert post.status_code == 409 and "symbolic link" in post.json()["error"]["message"], post.text
    assert list(outside.iterdir()) == [] and not (inbox / "a.md").exists()

    (inbox / ".orca").unlink()
    post = httpx.post(f"{url}/v1/collections/docs/documents", json={"documents": [{"id": "a.md", "text": "A."}]})
    assert post.status_code == 202, post.text
    # Now the records folder is swapped for a link to a folder holding files of the same names.
    (outside / "a.md").mkdir()
    (outside / "a.md" / "record.json").write_text("{}", encoding="utf-8")
    (outside / "a.md.json").write_text("{}", encoding="utf-8")
    sources = inbox / ".orca" / "sources"
    shutil.rmtree(sources)
    os.symlink(outside, sources)
    delete = httpx.delete(f"{url}/v1/collections/docs/documents/a.md")
    assert delete.status_code == 202, delete.text
    assert not (inbox / "a.md").exists()  # the document went, and nothing of theirs
    assert (outside / "a.md" / "record.json").exists() and (outside / "a.md.json").exists()


def test_a_documents_record_never_blocks_another_id(intake):
    url, home = intake
    first = {"documents": [{"id": "x.md", "text": "first"}]}
    second = {"documents": [{"id": "x.md.json/y.md", "text": "second"}]}
    for body in (first, second):
        answer = httpx.post(f"{url}/v1/collections/docs/documents", json=body)
        assert answer.status_code == 202, answer.text
    assert (home / "inbox" / "docs" / "x.md.json" / "y.md").read_text(encoding="utf-8") == "second"


def test_delete_removes_regular_files_only(intake, tmp_path):
    url, home = intake
    inbox = home / "inbox" / "docs"
    inbox.mkdir(parents=True)
    target = tmp_path / "precious.md"
    target.write_text("keep me", encoding="utf-8")
    os.symlink(target, inbox / "link.md")
    os.mkfifo(inbox / "pipe.md")
    for doc_id in ("link.md", "pipe.md"):
        answer = httpx.delete(f"{url}/v1/collections/docs/documents/{doc_id}")
        assert answer.status_code == 409 and "not a regular file" in answer.json()["error"]["message"], answer.text
    assert target.read_text(encoding="utf-8") == "keep me" and (inbox / "link.md").is_symlink()


def test_a_looping_folder_fails_its_own_post_and_nobody_elses(intake):
    url, home = intake
    looping = home / "inbox" / "loops"
    looping.mkdir(parents=True)
    os.symlink("dir", looping / "dir")  # dir -> dir
    (home / "inbox" / "loops" / "ok.md").write_text("fine", encoding="utf-8")
    answers: list[int] = []

    def post(number: int) -> None:
        body = {"documents": [{"id": f"n{number}.md", "text": f"note {number} about tides"}]}
        answers.append(httpx.post(f"{url}/v1/collections/birds/documents", json=body, timeout=30).status_code)

    threads = [threading.Thread(target=post, args=(number,)) for number in range(15)]
    for thread in threads:
        thread.start()
    bad = httpx.post(f"{url}/v1/collections/loops/documents", json={"documents": [{"id": "dir/x.md", "text": "x"}]})
    for thread in threads:
        thread.join()
    assert answers == [202] * 15
    assert bad.status_code == 409 and "symbolic link" in bad.json()["error"]["message"], bad.text
    listed = httpx.get(f"{url}/v1/collections")
    assert listed.status_code == 200, listed.text
    counts = {c["name"]: c["documents"] for c in listed.json()["collections"]}
    assert counts == {"birds": 15, "loops": 2}  # ok.md and the looping link, which a run reports failed


def test_names_at_the_length_limit_are_stored_whole_or_refused_leaving_nothing(intake):
    url, home = intake
    longest = "deep/" + "n" * 252 + ".md"  # a last part of 255 bytes, the file system's limit
    answer = httpx.post(f"{url}/v1/collections/docs/documents", json={"documents": [{"id": longest, "text": "t"}]})
    assert answer.status_code == 202, answer.text
    inbox = home / "inbox" / "docs"
    assert (inbox / longest).read_text(encoding="utf-8") == "t"
    assert httpx.delete(f"{url}/v1/collections/docs/documents/{longest}").status_code == 202
    before = sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*"))
    too_long = "other/" + "n" * 253 + ".md"
    answer = httpx.post(f"{url}/v1/collections/docs/documents", json={"documents": [{"id": too_long, "text": "t"}]})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_doc_id", answer.text
    assert sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*")) == before  # no folder left behind


def test_look_alike_ids_are_one_document_or_refused(intake):
    url, home = intake
    for doc_id in ("cafe\u0301.md", "caf\u00e9.md"):  # NFD, then NFC: the same name to a reader
        answer = httpx.post(f"{url}/v1/collections/docs/documents", json={"documents": [{"id": doc_id, "text": doc_id}]})
        assert answer.status_code == 202 and answer.json()["documents"] == ["caf\u00e9.md"], answer.text
    assert [p.name for p in (home / "inbox" / "docs").iterdir() if not p.name.startswith(".")] == ["caf\u00e9.md"]
    for doc_id in ("invoice\u202egnp.md", "pay\u200bment.md", "\ufeffbom.md"):
        answer = httpx.post(f"{url}/v1/collections/docs/documents", json={"documents": [{"id": doc_id, "text": "x"}]})
        assert answer.status_code == 422 and "formatting characters" in answer.json()["error"]["message"], answer.text
        upload = httpx.post(f"{url}/v1/collections/docs/documents", files={"files": (doc_id, b"x", "text/plain")})
        assert upload.status_code == 422, upload.text


@pytest.mark.parametrize(
    ("doc_id", "text"),
    [("x.json", '{"a": 1}'), ("page.html", "<script>alert(1)</script><style>p{}</style>"), ("rows.jsonl", "1\n2\n")],
)
def test_a_document_that_converts_to_nothing_is_refused_at_once(intake, doc_id, text):
    url, home = intake
    answer = httpx.post(f"{url}/v1/collections/docs/documents", json={"documents": [{"id": doc_id, "text": text}]})
    assert answer.status_code == 422 and "empty document" in answer.json()["error"]["message"], answer.text
    upload = httpx.post(f"{url}/v1/collections/docs/documents", files={"files": (doc_id, text.encode(), "text/plain")})
    assert upload.status_code == 422, upload.text
    assert not (home / "inbox" / "docs" / doc_id).exists()


def test_a_collection_folder_that_is_a_link_is_no_collection(intake, tmp_path):
    url, home = intake
    target = tmp_path / "etc"
    target.mkdir()
    (target / "passwd.txt").write_text("root:x:0:0", encoding="utf-8")
    (home / "inbox").mkdir(parents=True, exist_ok=True)
    os.symlink(target, home / "inbox" / "etc")
    listed = httpx.get(f"{url}/v1/collections").json()["collections"]
    assert [c["name"] for c in listed] == []
    post = httpx.post(f"{url}/v1/collections/etc/documents", json={"documents": [{"id": "a.md", "text": "a"}]})
    delete = httpx.delete(f"{url}/v1/collections/etc/documents/passwd.txt")
    for answer in (post, delete):
        assert answer.status_code == 409 and "symbolic link" in answer.json()["error"]["message"], answer.text
    assert sorted(p.name for p in target.iterdir()) == ["passwd.txt"]

    result = run_cli(["materialize", "etc"], env=orca_env(home), timeout=120)
    assert result.returncode == 1 and "ORCA_INBOX_FOLLOW_SYMLINKS" in result.stderr, result.stdout + result.stderr
    assert not (home / "warehouse" / "etc" / "embedding_index.parquet").exists()
    allowed = run_cli(["materialize", "etc"], env=orca_env(home, ORCA_INBOX_FOLLOW_SYMLINKS="1"), timeout=120)
    assert allowed.returncode == 0, allowed.stdout[-2000:] + allowed.stderr[-2000:]
    assert indexed(home, "etc") == {"passwd.txt"}
