"""Tests for `orca_core.loaders`: every supported file type becomes text, everything else a clear DocumentError."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orca_core.formats.html import html_to_text
from orca_core.loaders import SUPPORTED_SUFFIXES, DocumentError, read_document
from orca_core.names import is_ignored_name


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def text_of(path: Path, **kwargs) -> str:
    return read_document(path, **kwargs).text


def reason_of(path: Path, **kwargs) -> str:
    with pytest.raises(DocumentError) as caught:
        read_document(path, **kwargs)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


def test_supported_suffixes_are_the_documented_set() -> None:
    assert SUPPORTED_SUFFIXES == {
        ".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".json", ".jsonl",
        ".pdf", ".docx", ".pptx", ".xlsx", ".epub", ".csv", ".eml", ".ipynb",
    }  # fmt: skip


def test_markdown_is_returned_as_is_with_newlines_normalised(tmp_path: Path) -> None:
    source = "# Guide\r\n\r\nIntro.\r\n\r\n```python\r\nprint('x')\r\n```\r\n"
    text = text_of(write(tmp_path, "guide.MD", source))
    assert text == source.replace("\r\n", "\n")
    assert "\r" not in text


def test_suffix_is_case_insensitive_and_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.TXT", b"\xef\xbb\xbfHello, world.\n")
    assert text_of(path) == "Hello, world.\n"


def test_cjk_and_hindi_text_round_trip(tmp_path: Path) -> None:
    cjk = "東京は日本の首都です。人口は千四百万人を超えています。"
    hindi = "भारत एक विशाल देश है। यहाँ अनेक भाषाएँ बोली जाती हैं॥"
    assert text_of(write(tmp_path, "tokyo.txt", cjk)) == cjk
    assert text_of(write(tmp_path, "bharat.rst", hindi)) == hindi


def test_html_drops_noise_and_keeps_structure(tmp_path: Path) -> None:
    page = """<!doctype html><html><head><title>Ignored title</title>
    <style>p { color: red }</style><script>var secret = "not text";</script></head>
    <body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
    <h1>Honey   bees</h1><p>A colony keeps its hive <b>warm</b> in winter&nbsp;by shivering.</p>
    <h2>Dances</h2><p>Bees dance to tell&hellip; where &amp; how far flowers are.<br>Second line.</p>
    <ul><li>waggle</li><li>round</li></ul><pre>  code  keeps
    its   spacing</pre><footer>Copyright</footer><script>alert(1)</script></body></html>"""
    text = text_of(write(tmp_path, "bees.HTM", page))
    paragraphs = text.split("\n\n")
    assert paragraphs[0] == "# Honey bees"
    assert paragraphs[1] == "A colony keeps its hive warm in winter by shivering."
    assert paragraphs[2] == "## Dances"
    assert paragraphs[3] == "Bees dance to tell\u2026 where & how far flowers are.\nSecond line."
    assert "- waggle" in paragraphs and "- round" in paragraphs
    assert "```\n  code  keeps\n    its   spacing\n```" in text
    for noise in ("Ignored title", "color: red", "secret", "alert", "Home", "About", "Copyright"):
        assert noise not in text


def test_html_unclosed_pre_keeps_its_text() -> None:
    assert "still here" in html_to_text("<p>Intro</p><pre>still here")


def test_html_with_only_noise_is_empty(tmp_path: Path) -> None:
    path = write(tmp_path, "blank.html", "<html><head><title>T</title></head><body><script>x()</script></body></html>")
    assert reason_of(path) == "empty document"


def test_json_uses_text_field_with_title_heading(tmp_path: Path) -> None:
    path = write(tmp_path, "note.json", json.dumps({"title": "Volcanoes\n now", "text": "Basalt flows far.", "id": 7}))
    assert text_of(path) == "# Volcanoes now\n\nBasalt flows far."


def test_json_falls_back_to_content_then_body(tmp_path: Path) -> None:
    assert text_of(write(tmp_path, "a.json", '{"content": "From content.", "body": "no"}')) == "From content."
    assert text_of(write(tmp_path, "b.json", '{"text": 5, "body": "From body."}')) == "From body."


def test_json_without_text_field_joins_all_strings_depth_first(tmp_path: Path) -> None:
    value = {"name": "Ada", "tags": ["math", {"deep": "engine"}], "n": 3, "empty": " ", "last": "notes"}
    assert text_of(write(tmp_path, "ada.json", json.dumps(value))) == "Ada\n\nmath\n\nengine\n\nnotes"


def test_deeply_nested_json_does_not_crash(tmp_path: Path) -> None:
    path = write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000)
    assert reason_of(path).startswith("invalid JSON")


def test_invalid_json_is_reported_with_position(tmp_path: Path) -> None:
    reason = reason_of(write(tmp_path, "bad.json", '{"text": "unterminated}'))
    assert reason.startswith("invalid JSON: ") and "line 1" in reason


def test_jsonl_joins_records_and_skips_blank_lines(tmp_path: Path) -> None:
    lines = ['{"title": "One", "text": "First record."}', "", "   ", '{"body": "Second record."}', '["x", "y"]']
    text = text_of(write(tmp_path, "feed.jsonl", "\n".join(lines) + "\n"))
    assert text == "# One\n\nFirst record.\n\nSecond record.\n\nx\n\ny"


def test_jsonl_bad_line_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "feed.jsonl", '{"text": "ok"}\n\n{"text": oops}\n')
    assert reason_of(path).startswith("invalid JSON on line 3: ")


def test_binary_content_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert reason_of(path) == "binary content (NUL bytes)"


def test_utf16_gets_a_helpful_reason(tmp_path: Path) -> None:
    path = write(tmp_path, "windows.txt", "hello".encode("utf-16"))
    assert "UTF-16" in reason_of(path)


def test_invalid_utf8_names_byte_and_offset(tmp_path: Path) -> None:
    assert reason_of(write(tmp_path, "latin1.txt", "café".encode("latin-1"))) == (
        "not valid UTF-8 text (byte 0xe9 at offset 3)"
    )
    # The offset counts from the start of the file, BOM included.
    bom_then_bad = write(tmp_path, "bom.txt", b"\xef\xbb\xbfab\xff")
    assert reason_of(bom_then_bad) == "not valid UTF-8 text (byte 0xff at offset 5)"


@pytest.mark.parametrize("content", ["", "   \n\t\n", "\ufeff"])
def test_empty_documents_are_refused(tmp_path: Path, content: str) -> None:
    assert reason_of(write(tmp_path, "empty.md", content)) == "empty document"


def test_json_without_any_text_is_empty(tmp_path: Path) -> None:
    assert reason_of(write(tmp_path, "numbers.json", '{"a": 1, "b": [2, 3], "c": ""}')) == "empty document"


def test_oversized_file_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "big.txt", "x" * 101)

    def must_not_open(*args, **kwargs):
        raise AssertionError("an oversized file must be refused from its size alone")

    monkeypatch.setattr(Path, "open", must_not_open)
    assert reason_of(path, max_bytes=100) == "larger than 100 bytes (101 bytes)"


def test_file_at_the_size_limit_is_accepted(tmp_path: Path) -> None:
    assert text_of(write(tmp_path, "edge.txt", "x" * 100), max_bytes=100) == "x" * 100


def test_unsupported_type_is_refused(tmp_path: Path) -> None:
    assert reason_of(write(tmp_path, "photo.PNG", b"\x89PNG")) == "unsupported file type '.png'"
    assert reason_of(write(tmp_path, "README", "text")) == "unsupported file type (no extension)"


def test_permission_denied_is_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, where chmod 000 does not stop reads; make the open itself fail the way it would.
    path = write(tmp_path, "secret.txt", "classified")
    real_open = Path.open

    def denied(self: Path, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    reason = reason_of(path)
    assert reason == "unreadable: [Errno 13] Permission denied"
    assert str(tmp_path) not in reason


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    assert reason_of(tmp_path / "gone.md") == "unreadable: [Errno 2] No such file or directory"


def test_directory_and_fifo_are_refused_without_blocking(tmp_path: Path) -> None:
    folder = tmp_path / "looks-like.txt"
    folder.mkdir()
    assert reason_of(folder) == "unreadable: not a regular file"
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)  # opening it for reading would wait forever for a writer
    assert reason_of(fifo) == "unreadable: not a regular file"


@pytest.mark.parametrize(
    "name",
    [".hidden.md", ".DS_Store", "draft.md~", "report.txt.tmp", "video.PART", "a.partial", ".notes.md.swp",
     "x.swp", "file.crdownload", "#autosave.md#", "~$word.docx", "Thumbs.db", ".git/config.md", "sub/.cache/a.txt"],
)  # fmt: skip
def test_in_progress_and_hidden_names_are_ignored(name: str) -> None:
    assert is_ignored_name(name)


@pytest.mark.parametrize("name", ["guide.md", "notes.txt", "c#.md", "#tag.md", "a~b.txt", "sub/page.html", "temp.md"])
def test_ordinary_names_are_not_ignored(name: str) -> None:
    assert not is_ignored_name(name)


def test_markdown_front_matter_becomes_title_and_properties(tmp_path: Path) -> None:
    source = "---\ntitle: Field guide\nteam: infra\ntags: [a, b]\n---\n# Install\n\nSteps.\n"
    document = read_document(write(tmp_path, "guide.md", source))
    assert document.text == "# Install\n\nSteps.\n"
    assert (document.title, document.properties) == ("Field guide", {"team": "infra", "tags": "a, b"})
    assert document.pages is None


def test_the_title_is_the_first_heading_or_the_html_title(tmp_path: Path) -> None:
    assert read_document(write(tmp_path, "a.md", "Intro.\n\n## Set up ##\n\nText.")).title == "Set up"
    assert read_document(write(tmp_path, "b.txt", "No heading here.")).title is None
    page = "<html><head><title> Bees  of the world </title></head><body><h1>Hives</h1><p>x</p></body></html>"
    assert read_document(write(tmp_path, "c.html", page)).title == "Bees of the world"


def test_a_thematic_break_at_the_top_is_not_front_matter(tmp_path: Path) -> None:
    source = "---\n: not yaml [\n---\nText.\n"
    document = read_document(write(tmp_path, "odd.md", source))
    assert document.text == source and document.properties == {}
