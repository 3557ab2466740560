"""The benchmark suite at smoke size: it must run end to end and produce every row (no timing assertions).

Keeps `bench/` from rotting in CI. It never needs `../shared`: at smoke size the benchmarks write their own
synthetic documents, and ORCA_BENCH_CORPUS is pointed at a folder that does not exist to prove it. The
trigger-latency benchmark starts a whole `orca up`, and extraction generates PDFs, so each runs in a test of its
own (each under a minute).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_ROWS = {
    "saturation,incremental,memory,sensor,intake,corpus,model_load,splitter": [
        "1 saturation: Orca",
        "1 saturation: plain client (a)",
        "1 saturation: plain client (b)",
        "2 whole corpus",
        "3 incremental: unchanged corpus re-materialized",
        "3 incremental: 1% of documents edited",
        "4 sensor: unchanged tick",
        "4 sensor: tick after 100 files changed",
        "4 sensor: ticks until in-place edits are seen",
        "2 whole corpus (reference)",
        "5 intake: one-document posts",
        "5 intake: hundred-document posts",
        "7 memory: peak RSS",
        "8 model load: first query after load_model",
        "8 model load: load_model again while loaded",
        "9 text splitter: a large document",
    ],
    "s3_inbox": ["4 sensor on S3: unchanged tick"],
    "trigger": [
        "6 trigger latency: the floor",
        "6 trigger latency: one posted document",
        "6 trigger latency: a file dropped into the inbox",
        "6 trigger latency: a collection launched from the webserver",
    ],
    "extraction": [
        "10 extraction: PDF pages per second",
        "10 extraction: 4 PDFs on every core",
        "10 extraction: DOCX files per second",
        "10 extraction beside embedding",
    ],
    "pgvector": [
        "12 pgvector: first load of 5,000 chunks",
        "12 pgvector: 1% of the documents changed, 5,000 chunks",
        "12 pgvector: query with HNSW, 5,000 chunks",
        "12 pgvector: filter keeping 1%, 5,000 chunks",
    ],
    "client,fleet": [
        "14 client: embedding phase against a replay server",
        "14 client: the whole pipeline's CPU per extra input",
        "14 client: eight one-slot servers",
        "13 fleet: four one-slot servers against one",
        "13 fleet: four servers, one killed",
    ],
    "search,search_million": [
        "11 search: 5,000 chunks, 200 queries",
        "11 search: 5,000 chunks, filter keeping 1%",
        "11 search: 5,000 chunks, resident memory",
        "11 search: 5,000 chunks, first query after a 1% update",
        "11 search: 5,000 chunks, building the copy",
    ],
}


def run_smoke(tmp_path: Path, only: str) -> str:
    output = tmp_path / "benchmarks.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCA_", "DAGSTER_"))}
    env["ORCA_BENCH_CORPUS"] = str(tmp_path / "no-corpus-here")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--only", only, "--output", str(output)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=170,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = output.read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]
    for name in EXPECTED_ROWS[only]:
        assert any(name in line for line in table), f"no row {name!r} in:\n" + "\n".join(table)
    assert "Benchmarks that failed" not in text
    for heading in ("## Results", "## Run", "CPU:", "load average"):
        assert heading in text
    return text


def test_bench_smoke_produces_every_row(tmp_path: Path) -> None:
    run_smoke(tmp_path, "saturation,incremental,memory,sensor,intake,corpus,model_load,splitter")


def test_bench_smoke_s3_sensor(tmp_path: Path) -> None:
    run_smoke(tmp_path, "s3_inbox")


def test_bench_smoke_trigger_latency(tmp_path: Path) -> None:
    run_smoke(tmp_path, "trigger")


def test_bench_smoke_extraction(tmp_path: Path) -> None:
    run_smoke(tmp_path, "extraction")


def test_bench_smoke_search(tmp_path: Path) -> None:
    text = run_smoke(tmp_path, "search,search_million")
    rows = [line for line in text.splitlines() if line.startswith("| 11 search: 5,000 chunks, 200 queries")]
    assert len(rows) == 2  # make bench's row, and make bench-search's at smoke size


def test_bench_smoke_pgvector(tmp_path: Path) -> None:
    run_smoke(tmp_path, "pgvector")


def test_bench_smoke_client_and_fleet(tmp_path: Path) -> None:
    run_smoke(tmp_path, "client,fleet")
