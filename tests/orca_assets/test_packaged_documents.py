"""PDF, Office, e-book and mail files through the whole pipeline: pages and sections in the index, incremental
runs, and every bad file failing alone with its reason while the rest of the collection is indexed."""

from __future__ import annotations

import json
import os

import dagster as dg
import pyarrow.parquet as pq
import pytest

from orca_core.markdown import markdown_text
from orca_resources.hashing_embedder import HashingEmbedderResource
from tests.document_makers import (
    encrypt_pdf,
    make_docx,
    make_eml,
    make_ole2,
    make_pdf,
    make_pptx,
    make_scanned_pdf,
    make_xlsx,
    make_zip_bomb,
)
from tests.pipeline_helpers import Pipeline, failure_message, metadata, warning_checks

PAGES = [
    ["Orca reads the text layer of every page."],
    ["Installing on Linux needs Python and make."],
    ["Installing on a Mac needs Homebrew first."],
]
OUTLINE = [("Overview", 0, 0), ("Install", 1, 0), ("Linux", 1, 1), ("Mac", 2, 1)]
BAD = {
    "locked.pdf": "encrypted PDF",
    "truncated.pdf": "corrupt PDF",
    "page.pdf": "the file is an HTML page",
    "scan.pdf": "no text layer (scanned?); OCR is not supported",
    "bomb.docx": "zip bomb",
    "protected.xlsx": "password-protected",
    "lying.docx": "content does not match '.docx'",
    "attachments.eml": "e-mail without a text body",
}


@pytest.fixture
def pipeline(tmp_path) -> Pipeline:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    return Pipeline(home=tmp_path / "orca", collection="docs", instance=instance)


def row_with(rows: list[dict], phrase: str) -> dict:
    return next(row for row in rows if phrase in row["text"])


def write_good(inbox) -> None:
    (inbox / "guide.pdf").write_bytes(make_pdf(PAGES, outline=OUTLINE, title="Orca guide", author="Ada"))
    (inbox / "plan.docx").write_bytes(make_docx(
        [("h1", "Plan"), ("p", "We ship in spring."), ("h2", "Risks"), ("table", [["risk", "owner"], ["late", "Bo"]])],
        title="The plan",
    ))  # fmt: skip
    (inbox / "deck.pptx").write_bytes(make_pptx([("Welcome", ["Hello all"]), ("Numbers", ["Sales grew nine percent"])]))
    (inbox / "sheet.xlsx").write_bytes(make_xlsx({"Q1": [["item", "count"], ["apples", 3]], "Q2": [["item", "count"], ["pears", 5]]}))
    (inbox / "mail.eml").write_bytes(make_eml(subject="Budget", plain="The budget is approved."))


def test_pages_sections_titles_and_metadata_of_packaged_files_reach_the_index(pipeline):
    write_good(pipeline.inbox)
    result = pipeline.run(HashingEmbedderResource(dimensions=16), chunk_tokens=16)
    assert result.success, failure_message(result)
    rows = pipeline.index().to_pylist()
    linux = row_with(rows, "Installing on Linux")
    assert (linux["page"], linux["section"], linux["title"]) == (2, "Install > Linux", "Orca guide")
    assert json.loads(linux["metadata"])["author"] == "Ada"
    assert row_with(rows, "Homebrew")["page"] == 3
    assert row_with(rows, "| late | Bo |")["section"] == "Plan > Risks"  # a table as a Markdown table
    assert row_with(rows, "nine percent")["page"] == 2  # the second slide
    assert row_with(rows, "pears")["page"] == 2  # the second sheet
    assert row_with(rows, "budget is approved")["title"] == "Budget"
    assert {row["page"] for row in rows if row["doc_id"] == "mail.eml"} == {None}


def test_an_unchanged_pdf_is_not_read_again_and_an_edit_embeds_only_its_new_chunks(pipeline):
    write_good(pipeline.inbox)
    embedder = HashingEmbedderResource(dimensions=16)
    assert pipeline.run(embedder, chunk_tokens=16).success
    again = pipeline.run(embedder, chunk_tokens=16)
    assert metadata(again, "documents")["unchanged"] == 5 and metadata(again, "embeddings")["inputs_sent"] == 0
    edited = [*PAGES[:2], ["Installing on a Mac needs Homebrew and nothing else."]]
    (pipeline.inbox / "guide.pdf").write_bytes(make_pdf(edited, outline=OUTLINE, title="Orca guide", author="Ada"))
    result = pipeline.run(embedder, chunk_tokens=16)
    assert result.success, failure_message(result)
    assert metadata(result, "documents")["updated"] == 1
    assert 0 < metadata(result, "embeddings")["inputs_sent"] <= 2  # the third page's chunk, not the document
    assert "Homebrew and nothing" in row_with(pipeline.index().to_pylist(), "Homebrew")["text"]


def test_every_bad_file_fails_alone_with_its_reason(pipeline):
    write_good(pipeline.inbox)
    inbox = pipeline.inbox
    (inbox / "locked.pdf").write_bytes(encrypt_pdf(make_pdf(PAGES), "secret"))
    (inbox / "truncated.pdf").write_bytes(make_pdf(PAGES)[:300])
    (inbox / "page.pdf").write_bytes(b"<!DOCTYPE html><html><body>Not a PDF</body></html>")
    (inbox / "scan.pdf").write_bytes(make_scanned_pdf())
    (inbox / "bomb.docx").write_bytes(make_zip_bomb())
    (inbox / "protected.xlsx").write_bytes(make_ole2())
    (inbox / "lying.docx").write_bytes(make_pdf(PAGES))
    (inbox / "attachments.eml").write_bytes(make_eml(attachments=[("figures.pdf", make_pdf(PAGES))]))
    result = pipeline.run(HashingEmbedderResource(dimensions=16), chunk_tokens=16)
    assert result.success, failure_message(result)
    failed = pq.read_table(pipeline.home / "warehouse/docs/failed_documents.parquet").to_pylist()
    reasons = {row["doc_id"]: row["error"] for row in failed}
    assert set(reasons) == set(BAD)
    for doc_id, reason in BAD.items():
        assert reason in reasons[doc_id], (doc_id, reasons[doc_id])
    assert metadata(result, "documents")["failed"] == len(BAD)
    assert markdown_text("bomb.docx") in metadata(result, "documents")["failures"]  # the table the UI shows
    assert warning_checks(result) == {"failed_documents_check": False}
    indexed = set(pipeline.index()["doc_id"].to_pylist())
    assert indexed == {"guide.pdf", "plan.docx", "deck.pptx", "sheet.xlsx", "mail.eml"}


def test_many_pdfs_are_read_by_the_worker_processes(pipeline, monkeypatch):
    import orca_assets.extraction_pool as pool_module

    monkeypatch.setattr(pool_module, "workers", lambda: 2)
    started = []
    real_worker = pool_module.Worker

    class CountedWorker(real_worker):
        def __init__(self):
            super().__init__()
            started.append(self.process.pid)

    monkeypatch.setattr(pool_module, "Worker", CountedWorker)
    for number in range(6):
        (pipeline.inbox / f"r{number}.pdf").write_bytes(make_pdf([[f"Report {number} of six."]]))
    result = pipeline.run(HashingEmbedderResource(dimensions=16), chunk_tokens=16)
    assert result.success, failure_message(result)
    assert len(pipeline.index()) == 6 and 1 <= len(started) <= 2 and os.getpid() not in started
