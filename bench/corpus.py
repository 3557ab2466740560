"""Benchmark 2, whole corpus: every language as a collection through ONE `orca materialize` command.

The 13 language folders of the corpus (two synthetic collections at smoke size) are put in a fresh
ORCA_HOME's inbox, and `orca materialize <all 13 names>` runs once, with its default parallelism, against
the one-slot stand-in at 2 ms per input, as a user would run it. Total wall time over the server's busy time:
target at most 1.3. The command forks one worker per collection from a process that imported Dagster once,
so a collection's start-up (imports, reading, chunking) overlaps another's embedding. Each run is recorded
in DAGSTER_HOME; the per-collection detail comes from those run records. The same command is run again
with nothing changed, and one collection alone with nothing changed, to show the fixed cost. As a
reference, the old way: the same corpus in a second fresh ORCA_HOME, one command per collection, one after
another.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, Row, StandIn, Timer, fill_inbox, languages, verdict_max
from orca_core.tags import PARTITION_TAG

COST = 0.002
TARGET = 1.3
ORCA = str(Path(sys.executable).parent / "orca")  # the console script beside this interpreter


def orca(env: dict[str, str], *args: str) -> float:
    """Run `orca ARGS` to completion (it must succeed) and return its wall seconds."""
    with Timer() as took:
        done = subprocess.run([ORCA, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"orca {' '.join(args)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return took.seconds


def run_seconds(home: Path) -> dict[str, float]:
    """Start-to-end seconds of each collection's newest embed_collection_job run, from the instance."""
    import dagster as dg

    seconds: dict[str, float] = {}
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        for record in instance.get_run_records(dg.RunsFilter(job_name="embed_collection_job")):
            name = record.dagster_run.tags.get(PARTITION_TAG)
            if name and name not in seconds and record.start_time and record.end_time:
                seconds[name] = record.end_time - record.start_time  # records come newest first
    return seconds


def environment(home: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCA_", "DAGSTER_"))}
    env.update(ORCA_HOME=str(home), OLLAMA_HOST=url, ORCA_EMBEDDER="ollama", ORCA_EMBED_MODEL="nomic-embed-text",
               DAGSTER_DISABLE_TELEMETRY="1")
    return env


def run(smoke: bool, workdir: Path) -> list[Row]:
    names = languages(smoke)
    home, reference_home = workdir / "home", workdir / "home-one-by-one"
    for name in names:
        fill_inbox(home, name, smoke, language=name)
        fill_inbox(reference_home, name, smoke, language=name)
    with StandIn(cost_fixed=COST) as server:
        env = environment(home, server.url)
        server.reset()
        began = time.time()  # wall clock, comparable with the stand-in's first_acquire/last_release
        wall = orca(env, "materialize", *names)
        stats = server.stats()
        lead, tail = stats["first_acquire"] - began, began + wall - stats["last_release"]
        gaps = stats["last_release"] - stats["first_acquire"] - stats["busy_seconds"]
        per_run = run_seconds(home)
        unchanged_all = orca(env, "materialize", *names)
        unchanged_one = orca(env, "materialize", names[0])

        # The old way, as a reference: one command per collection, one after another.
        reference_env = environment(reference_home, server.url)
        server.reset()
        per_command = [orca(reference_env, "materialize", name) for name in names]
        reference_stats = server.stats()

    busy, reference_busy = stats["busy_seconds"], reference_stats["busy_seconds"]
    ratio, reference_wall = wall / busy, sum(per_command)
    met, margin = verdict_max(ratio, TARGET)
    overhead = wall - busy
    return [
        Row(
            f"2 whole corpus: one `orca materialize` of {len(names)} collections",
            f"{stats['inputs_embedded']} inputs in {stats['embed_requests']} requests: wall {wall:.1f} s, "
            f"server busy {busy:.1f} s",
            ratio, "server busy time", f"<= {TARGET}", met, margin,
            ["per collection (run start to end, 2 at a time): "
             + ", ".join(f"{n} {per_run[n]:.1f} s" for n in names if n in per_run),
             f"wall beyond busy: {overhead:.1f} s, {overhead / len(names):.2f} s per collection: {lead:.1f} s before the "
             f"first input reached the server (start-up, the first collection's reading and chunking), {gaps:.1f} s "
             f"of the server waiting (or of sleep overshoot) between the first and the last input, {tail:.1f} s "
             "after the last (the last index and its checks, the summary)",
             f"the same command again with nothing changed: {unchanged_all:.1f} s for {len(names)} collections; "
             f"`orca materialize {names[0]}` alone with nothing changed: {unchanged_one:.1f} s"],
        ),
        Row(
            f"2 whole corpus (reference): {len(names)} x `orca materialize`, one after another",
            f"{reference_stats['inputs_embedded']} inputs: wall {reference_wall:.1f} s, server busy "
            f"{reference_busy:.1f} s",
            reference_wall / reference_busy, "server busy time", "—", None, "",
            [f"per command: {', '.join(f'{n} {s:.1f} s' for n, s in zip(names, per_command))}",
             f"one command for all collections took {wall / reference_wall:.0%} of this wall time"],
        ),
    ]
