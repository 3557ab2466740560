"""Posting documents to the intake through FastAPI's TestClient: JSON and uploads, and every validation rule on the
way (collection names, document ids, path traversal, UTF-8 text, limits and 413s, conflicts).

Each test gets its own ORCA_HOME and app (fixtures in conftest.py). Deleting documents is covered by
test_intake_delete.py; the other endpoints by test_intake_jobs.py, test_intake_search.py, test_intake_operations.py
and test_intake_auth.py.
"""

from __future__ import annotations

import json

import pytest

from orca_resources import inbox
from tests.orca_intake.documents_helpers import DOCS, assert_error, hidden_leftovers, inbox_dir, queue_of, visible_files


def test_json_documents_are_written_with_sources_and_queued(intake_client):
    docs = [
        {"id": "guides/setup.md", "text": "# Setup\n\nInstall it.", "metadata": {"author": "ada"}},
        {"id": "notes", "text": "plain notes"},
        {"id": "report.pdf", "text": "text of a report"},
        {"text": "no id at all"},
    ]
    response = intake_client.post(DOCS.format("demo"), json={"documents": docs})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["collection"] == "demo" and body["status"] == "queued"
    ids = body["documents"]
    assert ids[:3] == ["guides/setup.md", "notes.txt", "report.pdf.txt"]
    assert ids[3].endswith(".txt") and len(ids[3]) == 36
    folder = inbox_dir(intake_client, "demo")
    assert (folder / "guides/setup.md").read_text() == "# Setup\n\nInstall it."
    assert (folder / ids[3]).read_text() == "no id at all"
    assert visible_files(folder) == sorted(ids)
    assert hidden_leftovers(folder) == []
    source = inbox.read_source(folder, "guides/setup.md")
    assert source["request_id"] == body["request_id"] and source["metadata"] == {"author": "ada"}
    assert source["received_at"].endswith("+00:00")
    assert inbox.read_source(folder, "notes.txt")["metadata"] == {}
    row = queue_of(intake_client).get(body["request_id"])
    assert (row.kind, row.collection, row.status) == ("documents", "demo", "queued")
    assert row.payload == {"doc_ids": ids, "metadata": 1}


def test_posting_an_existing_id_replaces_the_document(intake_client):
    for text in ("first version", "second version"):
        assert (
            intake_client.post(DOCS.format("demo"), json={"documents": [{"id": "a.md", "text": text}]}).status_code
            == 202
        )
    assert (inbox_dir(intake_client, "demo") / "a.md").read_text() == "second version"


def test_uploaded_files_keep_their_names_and_bytes(intake_client):
    files = [
        ("files", ("faq.md", "# FAQ\r\n\r\nQ: ünïcode?".encode())),
        ("files", ("data.json", b'{"title": "T", "text": "body"}')),
        ("files", ("sub/page.html", "\ufeff<p>hello</p>".encode())),  # a UTF-8 BOM is fine
    ]
    response = intake_client.post(DOCS.format("uploads"), files=files, data={"metadata": '{"batch": 7}'})
    assert response.status_code == 202, response.text
    assert response.json()["documents"] == ["faq.md", "data.json", "sub/page.html"]
    folder = inbox_dir(intake_client, "uploads")
    for _, (name, data) in files:
        assert (folder / name).read_bytes() == data
        assert inbox.read_source(folder, name)["metadata"] == {"batch": 7}
    assert queue_of(intake_client).get(response.json()["request_id"]).payload["metadata"] == 3


@pytest.mark.parametrize(
    ("files", "data", "code", "mentions"),
    [
        ([("files", ("bad.txt", b"ok \xff\xfe bad"))], None, "invalid_encoding", "bad.txt"),
        ([("files", ("utf16.txt", "hi".encode("utf-16")))], None, "invalid_encoding", "utf16.txt"),
        ([("files", ("slides.key", b"PK\x03\x04"))], None, "unsupported_file_type", "slides.key"),
        ([("files", ("slides.pptx", b"%PDF-1.7\n"))], None, "invalid_document", "slides.pptx"),
        ([("files", ("noext", b"text"))], None, "unsupported_file_type", "noext"),
        ([("files", ("../escape.txt", b"text"))], None, "invalid_doc_id", "escape.txt"),
        ([("files", (".hidden.txt", b"text"))], None, "invalid_doc_id", ".hidden.txt"),
        ([("files", ("nul.txt", b"a\x00b"))], None, "invalid_text", "nul.txt"),
        ([("files", ("empty.md", b"  \n"))], None, "invalid_text", "empty.md"),
        ([("files", ("broken.json", b"{not json"))], None, "invalid_text", "broken.json"),
        ([("file", ("typo.txt", b"text"))], None, "invalid_form", "files"),
        ([("files", ("ok.txt", b"text"))], {"metadata": "[1, 2]"}, "invalid_metadata", "metadata"),
        ([("files", ("ok.txt", b"text"))], {"colour": "blue"}, "invalid_form", "colour"),
    ],
)
def test_bad_uploads_are_refused_naming_the_file(intake_client, files, data, code, mentions):
    error = assert_error(intake_client.post(DOCS.format("demo"), files=files, data=data), 422, code)
    assert mentions in error["message"]
    assert not inbox_dir(intake_client, "demo").exists() or visible_files(inbox_dir(intake_client, "demo")) == []
    assert queue_of(intake_client).depth_by_status()["queued"] == 0


def test_forms_without_files_are_refused(intake_client):
    only_metadata = intake_client.post(DOCS.format("demo"), files={"metadata": (None, "{}")})
    assert_error(only_metadata, 422, "invalid_form")
    text_not_file = intake_client.post(DOCS.format("demo"), files={"files": (None, "not a file")})
    assert_error(text_not_file, 422, "invalid_form")
    no_boundary = intake_client.post(DOCS.format("demo"), content=b"x", headers={"content-type": "multipart/form-data"})
    assert_error(no_boundary, 422, "invalid_form")
    assert_error(intake_client.post(DOCS.format("demo"), data={"files": "x"}), 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "doc_id",
    [
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a\\b.txt",
        ".hidden",
        "dir/.git/config",
        "a//b.txt",
        "./a.txt",
        "x\x00y",
        "tab\there",
        "trailing/",
        "x.tmp",
        "draft.txt~",
        " spaced.txt",
        "a" * 300,
        "d/" * 600 + "x",
    ],
)
def test_unsafe_document_ids_are_refused(intake_client, doc_id):
    response = intake_client.post(DOCS.format("demo"), json={"documents": [{"id": doc_id, "text": "t"}]})
    assert_error(response, 422, "invalid_doc_id")
    home = intake_client.app.state.settings.home
    assert [p for p in home.rglob("*") if p.is_file() and "intake" not in p.parts] == []


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"documents": [{"text": ""}]}', "invalid_text"),
        (b'{"documents": [{"text": " \\n\\t "}]}', "invalid_text"),
        (b'{"documents": [{"text": "a\\u0000b"}]}', "invalid_text"),
        (b'{"documents": [{"text": "lone \\ud800 surrogate"}]}', "invalid_text"),
        (b'{"documents": [{"id": "x.json", "text": "{broken"}]}', "invalid_text"),
        (b'{"documents": [{"id": "x.jsonl", "text": "{}\\n{broken"}]}', "invalid_text"),
        (b'{"documents": [{"text": "t", "metadata": {"x": NaN}}]}', "invalid_metadata"),
        (b'{"documents": [{"id": "a", "text": "1"}, {"id": "a.txt", "text": "2"}]}', "duplicate_doc_id"),
        (b'{"documents": [{"id": "\\ud800", "text": "t"}]}', "invalid_doc_id"),
        (b'{"documents": [{"text": "t"}', "invalid_json"),
        (b'{"documents": [{"text": "\xff\xfe"}]}', "invalid_json"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
        (b'[{"text": "t"}]', "validation_error"),
        (b'{"docs": [{"text": "t"}]}', "validation_error"),
        (b'{"documents": []}', "validation_error"),
        (b'{"documents": [{"text": 5}]}', "validation_error"),
        (b'{"documents": [{"text": "t", "colour": "red"}]}', "validation_error"),
        (b'{"documents": [{"text": "t", "metadata": [1]}]}', "validation_error"),
        (b'{"documents": [{"id": 7, "text": "t"}]}', "validation_error"),
    ],
)
def test_invalid_json_documents_are_refused(intake_client, raw, code):
    response = intake_client.post(DOCS.format("demo"), content=raw, headers={"content-type": "application/json"})
    assert_error(response, 422, code)
    assert queue_of(intake_client).depth_by_status()["queued"] == 0


def test_validation_errors_say_where(intake_client):
    response = intake_client.post(DOCS.format("demo"), json={"documents": [{"text": "ok"}, {"txt": "typo"}]})
    error = assert_error(response, 422, "validation_error")
    assert "documents.1.text" in error["message"]
    assert {tuple(d["loc"]) for d in error["details"]} >= {("body", "documents", "1", "text")}


@pytest.mark.parametrize("name", ["Bad", "-lead", "a" * 64, "dots.not.allowed", "UPPER", "sp ace", "%2e%2e"])
def test_invalid_collection_names_are_refused(intake_client, name):
    error = assert_error(intake_client.post(DOCS.format(name), json={"documents": [{"text": "t"}]}), 422)
    assert error["code"] == "invalid_collection" or "collection" in error["message"]


def test_other_media_types_are_refused(intake_client):
    response = intake_client.post(DOCS.format("demo"), content=b"just text", headers={"content-type": "text/plain"})
    assert_error(response, 415, "unsupported_media_type")


def test_too_many_documents_is_413(intake_app_factory):
    client = intake_app_factory(ORCA_INTAKE_MAX_DOCUMENTS="3")
    docs = [{"text": f"doc {i}"} for i in range(4)]
    assert_error(client.post(DOCS.format("demo"), json={"documents": docs}), 413, "too_many_documents")
    files = [("files", (f"f{i}.txt", b"x")) for i in range(4)]
    assert_error(client.post(DOCS.format("demo"), files=files), 413, "too_many_documents")
    assert client.post(DOCS.format("demo"), json={"documents": docs[:3]}).status_code == 202


def test_text_over_the_per_document_limit_is_413(intake_app_factory):
    client = intake_app_factory(ORCA_INTAKE_MAX_TEXT_BYTES="100")
    error = assert_error(client.post(DOCS.format("demo"), json={"documents": [{"text": "é" * 51}]}), 413)
    assert error["code"] == "document_too_large" and "100" in error["message"]
    assert_error(
        client.post(DOCS.format("demo"), files=[("files", ("big.txt", b"x" * 101))]), 413, "document_too_large"
    )
    assert client.post(DOCS.format("demo"), json={"documents": [{"text": "x" * 100}]}).status_code == 202


def test_body_over_the_limit_is_413_by_content_length_and_while_streaming(intake_app_factory):
    client = intake_app_factory(ORCA_INTAKE_MAX_BODY_BYTES="1000")
    big = json.dumps({"documents": [{"text": "x" * 2000}]}).encode()
    error = assert_error(
        client.post(DOCS.format("demo"), content=big, headers={"content-type": "application/json"}), 413
    )
    assert error["code"] == "payload_too_large" and "1000" in error["message"]

    def chunks():  # no Content-Length: the limit must hold while the body streams in
        for start in range(0, len(big), 256):
            yield big[start : start + 256]

    streamed = client.post(DOCS.format("demo"), content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in streamed.request.headers
    assert_error(streamed, 413, "payload_too_large")
    upload = client.post(DOCS.format("demo"), files=[("files", ("a.txt", b"y" * 2000))])
    assert_error(upload, 413, "payload_too_large")
    # Even a request that would be refused for other reasons gets the JSON 413 first.
    assert_error(client.post("/v1/search", content=big, headers={"content-type": "application/json"}), 413)
    assert not inbox_dir(client, "demo").exists()


def test_a_document_in_the_way_of_a_folder_is_a_conflict(intake_client):
    assert intake_client.post(DOCS.format("demo"), json={"documents": [{"id": "a.md", "text": "t"}]}).status_code == 202
    response = intake_client.post(DOCS.format("demo"), json={"documents": [{"id": "a.md/b.md", "text": "t"}]})
    assert_error(response, 409, "document_conflict")
