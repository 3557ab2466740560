"""`make bench`: run Orca's benchmarks, print the table and write it to docs/benchmarks.md.

    .venv/bin/python bench/run.py [--smoke] [--only NAME[,NAME...]] [--output PATH]

Every figure is a ratio against a baseline measured in the same run (absolute numbers are given for
reference). `--smoke` runs tiny sizes with synthetic documents (CI: no timing assertions) and by default
writes to a temporary file instead of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Row  # noqa: E402

# (name, module): in order of importance; each module has run(smoke, workdir) -> list[Row] and a docstring.
BENCHMARKS = [
    ("saturation", "bench.saturation"),
    ("incremental", "bench.incremental"),
    ("memory", "bench.memory"),
    ("sensor", "bench.sensor"),
    ("s3_inbox", "bench.s3_inbox"),
    ("intake", "bench.intake"),
    ("corpus", "bench.corpus"),
    ("trigger", "bench.trigger"),
    ("splitter", "bench.splitter"),
    ("model_load", "bench.model_load"),
    ("extraction", "bench.extraction"),
    ("search", "bench.search"),
    ("pgvector", "bench.pgvector"),
    ("fleet", "bench.fleet"),
]
# Run only when named (`make bench-search`, `make bench-client`): they would take make bench past its 20 minutes.
EXTRA = [("search_million", "bench.search_million"), ("client", "bench.client")]
NOT_MEASURED: list[str] = []
HEADER = ["benchmark", "figure", "ratio", "baseline (same run)", "target", "verdict"]


def machine() -> list[str]:
    model, cpus = "unknown", os.cpu_count()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        memory = f"{int(memory.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        memory = "unknown"
    return [f"CPU: {cpus} x {model}", f"memory: {memory}",
            f"Python {platform.python_version()} on {platform.platform()}"]


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Orca's benchmarks.")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, synthetic documents, no timing claims")
    parser.add_argument("--only", help="comma-separated benchmark names: " + ", ".join(n for n, _ in BENCHMARKS + EXTRA))
    parser.add_argument("--output", help="where to write the Markdown (default docs/benchmarks.md; smoke: a temp file)")
    args = parser.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else {name for name, _ in BENCHMARKS}
    unknown = wanted - {name for name, _ in BENCHMARKS + EXTRA}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

    started_at = datetime.now(timezone.utc)
    load_start = os.getloadavg()
    rows: list[Row] = []
    docs: list[str] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="orca-bench-") as tmp:
        for name, module_name in BENCHMARKS + EXTRA:
            if name not in wanted:
                continue
            began = time.perf_counter()
            print(f"== {name} ...", flush=True)
            try:
                module = importlib.import_module(module_name)
                found = module.run(args.smoke, Path(tmp) / name)
            except Exception:  # one broken benchmark must not hide the others' results
                failures.append(f"{name}: {traceback.format_exc().strip().splitlines()[-1]}")
                traceback.print_exc()
                continue
            docs.append(f"### {name}\n\n{(module.__doc__ or '').strip()}\n")
            for row in found:
                print("  " + " | ".join(row.cells()), flush=True)
                for note in row.notes:
                    docs.append(f"- {row.bench}: {note}")
            docs.append(f"\n({name} took {time.perf_counter() - began:.0f} s)\n")
            rows.extend(found)
    load_end = os.getloadavg()
    took = (datetime.now(timezone.utc) - started_at).total_seconds()

    command = "make bench" if not args.smoke and not args.only else "bench/run.py " + " ".join(argv or sys.argv[1:])
    # Only the load before the first benchmark says whether others shared the machine: the suite loads it too.
    loaded = load_start[0] > (os.cpu_count() or 1) * 0.5
    out = [
        "# Benchmarks", "",
        "Generated by `bench/run.py`; do not edit by hand. Ratios are against baselines measured in the same run.",
        "", "## Results", "", table(rows), "",
    ]
    if failures:
        out += ["Benchmarks that failed in this run:", ""] + [f"- {f}" for f in failures] + [""]
    if NOT_MEASURED:
        out += ["Not measured yet:", ""] + [f"- {n}" for n in NOT_MEASURED] + [""]
    out += ["## Run", "", f"- command: `{command}`{' (smoke size)' if args.smoke else ''}",
            f"- date: {started_at:%Y-%m-%d %H:%M} UTC, took {took / 60:.1f} min"]
    out += [f"- {line}" for line in machine()]
    out += [f"- load average (1/5/15 min) at start {load_start[0]:.2f}/{load_start[1]:.2f}/{load_start[2]:.2f}, "
            f"at end {load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f}"]
    if loaded:
        out += ["- **the machine was busy before the run started** (load above half its cores: other work shared "
                "it): absolute numbers are noisy; the same-run ratios are what count"]
    notes_path = ROOT / "bench" / "FINDINGS.md"
    out += ["", "## Details", ""] + docs
    if notes_path.is_file():
        out += ["", notes_path.read_text().strip()]
    text = "\n".join(out) + "\n"
    target = Path(args.output) if args.output else (
        Path(tempfile.gettempdir()) / "orca-bench-smoke.md" if args.smoke else ROOT / "docs" / "benchmarks.md")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print("\n" + table(rows) + f"\n\nwritten to {target}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
