"""Plain-text formats: `.txt .md .markdown .rst .html .htm .json .jsonl`, decoded as UTF-8.

Markdown keeps its YAML front matter out of the text and in the document's properties; the title is the
front matter's `title` or the first heading (HTML: its `<title>`, else its first heading).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator

import yaml

from orca_core.formats import DocumentError, Extracted
from orca_core.formats.html import html_title, html_to_text

_TEXT_KEYS = ("text", "content", "body")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*(?:\n|\Z)", re.DOTALL)
_ATX_TITLE = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_MARKDOWN = (".md", ".markdown")


def extract_text(suffix: str, data: bytes) -> Extracted:
    text = decode_utf8(data)
    properties: dict[str, str] = {}
    title = None
    if suffix in _MARKDOWN:
        text, properties = split_front_matter(text)
        title = properties.pop("title", None)
    elif suffix in (".html", ".htm"):
        title = html_title(text)
    text = to_text(suffix, text)
    return Extracted(text=text, title=title or first_heading(text), properties=properties)


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


def split_front_matter(text: str) -> tuple[str, dict[str, str]]:
    """Markdown's YAML front matter as properties (scalar values as strings), and the text after it."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return text, {}
    try:
        values = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return text, {}  # not front matter after all: a thematic break and some text; keep it as text
    if not isinstance(values, dict):
        return text, {}
    properties = {str(key): _scalar(value) for key, value in values.items() if value is not None}
    return text[match.end():], properties


def _scalar(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_scalar(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def first_heading(text: str) -> str | None:
    match = _ATX_TITLE.search(text)
    return " ".join(match.group(1).split()) if match else None


def decode_utf8(data: bytes) -> str:
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
