"""Benchmark 7, memory: does the pipeline stream, or hold the collection in memory?

Synthetic collections of about 50,000 and 200,000 chunks (short paragraphs, `max_tokens` 48, 768-dimension
offline hashing embedder) are each materialized in a fresh subprocess (`bench/memory_child.py`), asset by
asset. The figure is the child's peak resident memory (`ru_maxrss` of RUSAGE_CHILDREN, cross-checked
with VmHWM); the child also reports each asset's own peak (VmHWM reset between assets), which shows where
the memory goes. Target: the larger collection's peak at most twice the smaller's.
"""

from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path

from bench.common import PYTHON, ROOT, Row, Timer, verdict_max, write_synthetic

CHUNKS_PER_DOC = 119  # measured: 100 paragraphs of 20 words at 48 tokens per chunk give about 119 chunks
TARGET = 2.0


def _measure(workdir: Path, chunks: int) -> dict:
    home = workdir / f"c{chunks}"
    write_synthetic(home / "inbox" / "synthetic", docs=max(1, round(chunks / CHUNKS_PER_DOC)), paragraphs=100,
                    words=20, seed=chunks)
    with Timer() as timer:
        out = subprocess.run([PYTHON, str(ROOT / "bench" / "memory_child.py"), str(home)],
                             capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["maxrss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far
    report["peak_kib"] = max(step["peak_kib"] for step in report["steps"].values())
    report["seconds"] = timer.seconds
    report["chunks"] = report["steps"]["chunks"]["rows"]
    return report


def _where(report: dict) -> str:
    parts = [f"{name} {s['start_kib'] / 1024:.0f}->{s['peak_kib'] / 1024:.0f} MiB ({s['seconds']:.0f} s)"
             for name, s in report["steps"].items()]
    return f"{report['chunks']} chunks: after imports {report['after_imports_kib'] / 1024:.0f} MiB; " + "; ".join(parts)


def run(smoke: bool, workdir: Path) -> list[Row]:
    small, large = (500, 2_000) if smoke else (50_000, 200_000)
    first = _measure(workdir, small)
    second = _measure(workdir, large)
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: the second child, unless the first was larger.
    ratio = second["peak_kib"] / first["peak_kib"]
    met, margin = verdict_max(ratio, TARGET)
    return [Row(
        "7 memory: peak RSS, 4x the chunks",
        f"{first['chunks']} chunks: {first['peak_kib'] / 1024:.0f} MiB ({first['seconds']:.0f} s); "
        f"{second['chunks']} chunks: {second['peak_kib'] / 1024:.0f} MiB ({second['seconds']:.0f} s); "
        f"RUSAGE_CHILDREN max {second['maxrss_kib'] / 1024:.0f} MiB",
        ratio, "peak RSS of the smaller collection", f"<= {TARGET}", met, margin,
        [f"per asset (RSS at start -> peak): {_where(first)}", f"per asset: {_where(second)}"],
    )]
