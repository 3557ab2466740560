"""Content sniffing and the zip guard: a suffix that lies is named, a zip bomb refused before unpacking."""

from __future__ import annotations

import io
import zipfile

import pytest

from orca_core import formats
from orca_core.formats import DocumentError, extract
from orca_core.formats.sniff import BINARY, EMPTY, HTML, OLE2, PDF, TEXT, ZIP, sniff
from orca_core.formats.zipguard import check_expansion
from tests.document_makers import make_docx, make_ole2, make_pdf


def reason(suffix: str, data: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        extract(suffix, data)
    return caught.value.reason


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n", PDF),
        (b"\r\n  junk before the header %PDF-1.4", PDF),
        (b"PK\x03\x04rest", ZIP),
        (bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 8, OLE2),
        (b"\xef\xbb\xbf  <!DOCTYPE HTML><html>", HTML),
        (b"\n<html lang='en'>", HTML),
        (b"name,amount\n", TEXT),
        (b"<p>a fragment is not a page</p>", TEXT),
        (b"\x00\x01\x02", BINARY),
        (b"", EMPTY),
    ],
)
def test_sniff(data: bytes, kind: str) -> None:
    assert sniff(data) == kind


@pytest.mark.parametrize(
    ("suffix", "data", "what"),
    [
        (".pdf", b"<!doctype html><html><body>Error 404</body></html>", "an HTML page"),
        (".docx", b"%PDF-1.4\n%%EOF", "a PDF"),
        (".pptx", b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (".epub", b"plain words", "plain text"),
        (".ipynb", b"%PDF-1.4", "a PDF"),
        (".pdf", b"PK\x03\x04", "a ZIP archive"),
    ],
)
def test_a_suffix_that_lies_is_named(suffix: str, data: bytes, what: str) -> None:
    assert reason(suffix, data) == f"content does not match '{suffix}': the file is {what}"


@pytest.mark.parametrize("suffix", [".docx", ".xlsx", ".pptx"])
def test_ooxml_that_is_ole2_is_encrypted_or_legacy(suffix: str) -> None:
    assert reason(suffix, make_ole2()).startswith("password-protected (encrypted) Office file, or a pre-2007")


def test_pdf_named_ole2_is_named_not_called_encrypted_office() -> None:
    assert reason(".pdf", make_ole2()).startswith("content does not match '.pdf': the file is an OLE2 compound file")


def test_an_empty_packaged_file_is_an_empty_document() -> None:
    assert reason(".docx", b"") == "empty document"


def test_expansion_limit_is_the_sum_of_declared_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "MAX_UNPACKED_BYTES", 1000)
    parts = [zipfile.ZipInfo(f"part{n}") for n in range(3)]
    for part in parts:
        part.file_size, part.compress_size = 400, 300
    with pytest.raises(DocumentError) as caught:
        check_expansion(parts)
    assert caught.value.reason == "zip bomb? its parts would expand to 1200 bytes, more than the limit of 1000"
    check_expansion(parts[:2])  # 800 bytes: fine


def test_a_high_ratio_is_fine_for_a_small_part() -> None:
    part = zipfile.ZipInfo("styles.xml")
    part.file_size, part.compress_size = 1024 * 1024, 100  # 10,000:1 but only 1 MiB
    check_expansion([part])


def test_a_real_document_passes_the_guard() -> None:
    data = make_docx([("p", "Fine.")])
    check_expansion(zipfile.ZipFile(io.BytesIO(data)).infolist())
    assert extract(".docx", data).text == "Fine."
    assert extract(".pdf", make_pdf([["Fine."]])).text == "Fine."
