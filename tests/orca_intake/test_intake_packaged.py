"""Uploading PDF and Office files to the intake: stored as they came, refused at once when the run would refuse."""

from __future__ import annotations

import pytest

from tests.document_makers import encrypt_pdf, make_docx, make_pdf, make_scanned_pdf, make_zip_bomb

DOCS = "/v1/collections/{}/documents"
PAGES = [["A page about harbours."], ["A page about ships."]]


def test_a_pdf_and_a_docx_are_stored_byte_for_byte(intake_client):
    pdf, docx = make_pdf(PAGES), make_docx([("h1", "Plan"), ("p", "We ship in spring.")])
    answer = intake_client.post(
        DOCS.format("demo"), files=[("files", ("report.pdf", pdf)), ("files", ("plan.docx", docx))],
        data={"metadata": '{"team": "infra"}'},
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    assert answer.json()["documents"] == ["report.pdf", "plan.docx"]
    inbox = intake_client.app.state.settings.layout.inbox("demo")
    assert (inbox / "report.pdf").read_bytes() == pdf and (inbox / "plan.docx").read_bytes() == docx


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("page.pdf", lambda: b"<!doctype html><html><body>hi</body></html>", "the file is an HTML page"),
        ("locked.pdf", lambda: encrypt_pdf(make_pdf(PAGES), "secret"), "encrypted PDF"),
        ("scan.pdf", make_scanned_pdf, "no text layer (scanned?); OCR is not supported"),
        ("lying.docx", lambda: make_pdf(PAGES), "content does not match '.docx': the file is a PDF"),
        ("bomb.docx", make_zip_bomb, "zip bomb"),
    ],
)
def test_a_file_the_run_would_refuse_is_a_422_with_the_reason(intake_client, name, make, reason):
    answer = intake_client.post(DOCS.format("demo"), files=[("files", (name, make()))])
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_document" and reason in error["message"] and name in error["message"]
    inbox = intake_client.app.state.settings.layout.inbox("demo")
    assert not (inbox / name).exists()


def test_a_file_over_the_body_limit_is_a_413(intake_app_factory):
    client = intake_app_factory(ORCA_INTAKE_MAX_BODY_BYTES="4000")
    big = make_pdf([["Page of many words. " * 200]] * 10)
    assert len(big) > 4000
    answer = client.post(DOCS.format("demo"), files=[("files", ("big.pdf", big))])
    assert answer.status_code == 413, answer.text


def test_text_posted_as_json_under_a_pdf_name_stays_text(intake_client):
    answer = intake_client.post(DOCS.format("demo"), json={"documents": [{"id": "notes.pdf", "text": "plain words"}]})
    assert answer.status_code == 202 and answer.json()["documents"] == ["notes.pdf.txt"]
