"""Benchmark 9, text splitter: cutting a large document into chunks costs little more than reading it once.

A 2 MB synthetic Markdown document (headings and paragraphs; 200 KB at smoke size) is cut by `chunk_text` at
the default 384 tokens with 48 of overlap. The baseline, in the same run, is one pass of a word regex over the
same text (`re.findall(r"\\w+")`), the least any reader that looks at every word pays. The best of three of
each is compared. Target: at most 10 times the baseline.
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

from bench.common import Row, synthetic_text, verdict_max

TARGET = 10.0
REPEATS = 3


def _document(size: int) -> str:
    rng = random.Random(3)
    parts: list[str] = []
    while sum(map(len, parts)) < size:
        parts.append(synthetic_text(rng, 5))
    return "\n\n".join(parts)


def _best(work) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def run(smoke: bool, workdir: Path) -> list[Row]:
    from orca_assets.text_splitter import chunk_text

    text = _document(200_000 if smoke else 2_000_000)
    chunks = chunk_text(text)
    split_s = _best(lambda: chunk_text(text))
    scan_s = _best(lambda: re.findall(r"\w+", text))
    ratio = split_s / scan_s
    met, margin = verdict_max(ratio, TARGET)
    return [
        Row(
            "9 text splitter: a large document" + (" (200 KB, smoke)" if smoke else " (2 MB)"),
            f"{split_s * 1000:.0f} ms for {len(text.encode()) / 1e6:.1f} MB into {len(chunks):,} chunks",
            ratio,
            f"one word-regex pass over the same text: {scan_s * 1000:.0f} ms",
            f"<= {TARGET:g}x",
            met,
            margin,
        )
    ]
