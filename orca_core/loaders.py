"""Turning one inbox file into plain text, or a `DocumentError` whose reason a user can act on.

Shared by the `documents` asset, which reads the inbox, and the REST intake, which converts a posted document
the same way before it answers, so a document that would come out empty is refused at once (422), not
minutes later in a run. Only the standard library is used: HTML goes through `html.parser`, JSON through
`json`.
"""

from __future__ import annotations

import codecs
import json
import re
import stat
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

# The naming rules are shared with the REST intake (which cannot import orca_assets).
from orca_core.names import DOCUMENT_SUFFIXES as SUPPORTED_SUFFIXES
from orca_core.names import MAX_DOCUMENT_BYTES

_TEXT_KEYS = ("text", "content", "body")


class DocumentError(Exception):
    """A file that cannot become a document; `reason` is short and meant for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_document(path: Path, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> str:
    """Read `path` and return its text (HTML and JSON converted), or raise `DocumentError`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"unsupported file type '{suffix}'" if suffix else "unsupported file type (no extension)")
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # Opening a FIFO or device would block or never end; a directory is no document either.
            raise DocumentError("unreadable: not a regular file")
        size = info.st_size
        if size > max_bytes:
            raise DocumentError(f"larger than {max_bytes} bytes ({size} bytes)")
        with path.open("rb") as handle:
            # Read one byte more than allowed: a file that grew after stat() must not slip through.
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise DocumentError(f"unreadable: {describe_os_error(error)}") from error
    if len(data) > max_bytes:
        raise DocumentError(f"larger than {max_bytes} bytes (still growing)")
    return to_text(suffix, _decode(data))


def to_text(suffix: str, text: str) -> str:
    """The text a document of type `suffix` (`.html`, `.json`, ...) holding `text` is indexed as;
    DocumentError when it is not valid for its type or nothing remains (HTML of scripts only, JSON of numbers)."""
    if "\x00" in text:
        raise DocumentError("binary content (NUL bytes)")
    if suffix in (".html", ".htm"):
        text = html_to_text(text)
    elif suffix == ".json":
        text = json_to_text(_load_json(text, where=""))
    elif suffix == ".jsonl":
        text = _jsonl_to_text(text)
    if not text.strip():
        raise DocumentError("empty document")
    return text


def describe_os_error(error: OSError) -> str:
    # The caller already knows the path; repeating it makes the reason long and leaks absolute paths.
    if error.errno is not None and error.strerror:
        return f"[Errno {error.errno}] {error.strerror}"
    return str(error) or type(error).__name__


def _decode(data: bytes) -> str:
    offset = 0
    if data.startswith(codecs.BOM_UTF8):
        data, offset = data[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DocumentError("not valid UTF-8 text (UTF-16 byte order mark); save the file as UTF-8")
    if b"\x00" in data:
        raise DocumentError("binary content (NUL bytes)")
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as error:
        bad = data[error.start]
        raise DocumentError(f"not valid UTF-8 text (byte 0x{bad:02x} at offset {error.start + offset})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _load_json(text: str, *, where: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DocumentError(f"invalid JSON{where}: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise DocumentError(f"invalid JSON{where}: nested too deeply") from None


def _jsonl_to_text(text: str) -> str:
    parts = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            part = json_to_text(_load_json(line, where=f" on line {number}"))
            if part.strip():
                parts.append(part)
    return "\n\n".join(parts)


def json_to_text(value: object) -> str:
    """The text of one JSON value: its "text"/"content"/"body" field (titled), else all its strings."""
    if isinstance(value, dict):
        for key in _TEXT_KEYS:
            body = value.get(key)
            if isinstance(body, str) and body.strip():
                title = value.get("title")
                if isinstance(title, str) and title.strip():
                    return f"# {' '.join(title.split())}\n\n{body}"
                return body
    return "\n\n".join(s for s in _strings(value) if s.strip())


def _strings(value: object) -> Iterator[str]:
    # An explicit stack: deeply nested JSON must not hit Python's recursion limit here.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


_SKIP_TAGS = frozenset(
    {"script", "style", "head", "title", "nav", "noscript", "template", "svg", "iframe", "footer", "aside"}
    | {"object", "canvas"}
)
_BLOCK_TAGS = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "li", "ul", "ol", "dl", "dt", "dd", "table", "tr",
        "thead", "tbody", "tfoot", "caption", "blockquote", "figure", "figcaption", "address", "details",
        "summary", "form", "fieldset", "hr", "body", "html",
    }
)  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_SPACES = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    """Collects visible text as paragraphs; headings become Markdown '#' lines, <pre> becomes a fence."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._inline: list[str] = []
        self._skip_depth = 0
        self._pre_depth = 0
        self._heading = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif self._skip_depth:
            return
        elif tag == "br":
            self._inline.append("\n")
        elif tag == "pre":
            self._flush()
            self._pre_depth += 1
        elif tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag in _BLOCK_TAGS:
            self._flush()
            if tag == "li":
                self._inline.append("- ")
        elif tag in ("td", "th"):
            self._inline.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif self._skip_depth:
            return
        elif tag == "pre" and self._pre_depth:
            code = "".join(self._inline).strip("\n").rstrip()
            self._inline.clear()
            self._pre_depth -= 1
            if code.strip():
                self.blocks.append(f"```\n{code}\n```")
        elif tag in _HEADINGS or tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        self._inline.append(data if self._pre_depth else _SPACES.sub(" ", data))

    def close(self) -> None:
        super().close()
        if self._pre_depth:  # an unclosed <pre> still holds text that must not be lost
            self._pre_depth = 1
            self.handle_endtag("pre")
        self._flush()

    def _flush(self) -> None:
        if self._pre_depth:
            return
        lines = (" ".join(line.split()) for line in "".join(self._inline).split("\n"))
        text = "\n".join(line for line in lines if line)
        self._inline.clear()
        if self._heading:
            if text:
                text = "#" * self._heading + " " + " ".join(text.split())
            self._heading = 0
        if text and text != "-":
            self.blocks.append(text)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page: blank-line separated paragraphs, headings as '# ' lines."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return "\n\n".join(parser.blocks)
