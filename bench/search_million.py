"""Benchmark 11 at a million chunks (`make bench-search`): benchmark 11's rows for 1,000,000 chunks of 768
dimensions, then for 100,000 in the same run. Building the graph of a million vectors takes minutes on two
cores, so these rows run apart from `make bench` (which keeps the 100,000 rows)."""

from __future__ import annotations

from pathlib import Path

from bench import search
from bench.common import Row


def run(smoke: bool, workdir: Path) -> list[Row]:
    if smoke:
        return search.run(True, workdir / "smoke")
    return search.run(False, workdir / "million", rows=1_000_000) + search.run(False, workdir / "hundred-thousand")
