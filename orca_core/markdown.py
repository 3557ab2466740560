"""Text from documents and users shown inside Markdown (run metadata the webserver renders) as plain text.

A document id or a failure reason may hold backticks, pipes, brackets, angle brackets or line breaks: written
raw into a Markdown table they would break the table, or turn into a link (`[x](javascript:...)`) or an image
(`<img src=...>`) in the webserver. `markdown_text` makes every Markdown and HTML special character a literal.
"""

from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation; `<` `>` `&` become entities so no tag survives.
_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~\"'])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def markdown_text(text: str, limit: int = 300) -> str:
    """`text` as literal Markdown on one line (cut to `limit` characters), safe inside a table cell."""
    line = " ".join(str(text).split())
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    line = "".join(_ENTITIES.get(char, char) for char in line)
    return _PUNCTUATION.sub(r"\\\1", line)
