"""Small documents written for Orca's tests (the suite never needs the shared corpus)."""

from __future__ import annotations

from pathlib import Path

GUIDE_MD = """# Keeping indexes fresh

Orca watches a folder of documents. When a file changes, only its chunks are embedded again.

## Why chunks

Embedding models read a limited context. Long documents are cut into overlapping chunks so that every
sentence lands in at least one vector. The overlap keeps a sentence that straddles a boundary searchable.

## Deleting

When a document leaves the inbox, its rows leave the index at the next run.
"""

HARBOUR_TXT = """The harbour master logs every ship that enters the bay.
Tides decide when the heavy freighters may dock. Fishing boats come and go at dawn.

In winter the storms close the harbour for days at a time."""

PAGE_HTML = """<html><head><title>Bees</title><style>p { color: red }</style></head>
<body><h1>Honey bees</h1><p>A colony of honey bees keeps its hive warm in winter by shivering.</p>
<script>alert('not text')</script><p>Bees dance to tell each other where flowers are.</p></body></html>"""

NOTE_JSON = '{"title": "Volcanoes", "text": "Basalt lava flows far before it cools into dark rock."}'

CJK_TXT = "東京は日本の首都です。人口は千四百万人を超えています。電車はとても時間に正確です。"


def write_collection(inbox: Path) -> dict[str, Path]:
    """Write a small mixed collection into `inbox` and return its documents by id."""
    files = {
        "guide.md": GUIDE_MD,
        "ports/harbour.txt": HARBOUR_TXT,
        "bees.html": PAGE_HTML,
        "volcano.json": NOTE_JSON,
        "tokyo.txt": CJK_TXT,
    }
    paths = {}
    for doc_id, text in files.items():
        path = inbox / doc_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths[doc_id] = path
    return paths
