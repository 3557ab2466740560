"""Benchmark 2, whole corpus: every language as a collection through the `orca materialize` command.

The 13 language folders of the corpus (two synthetic collections at smoke size) are put in a fresh
ORCA_HOME's inbox, and `orca materialize <collection>` runs for each, one after another, against the one-slot
stand-in at 2 ms per input, as a user would run them. Total wall time over the server's busy time: target
at most 1.3. Each command is a new process that imports Dagster, opens the instance (SQLite under
DAGSTER_HOME), runs the job with its asset checks in-process and records it; to show what that costs, the
first collection is run once more unchanged (nothing to embed) and that command's time is reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.common import ROOT, Row, StandIn, Timer, fill_inbox, languages, verdict_max

COST = 0.002
TARGET = 1.3
ORCA = str(Path(sys.executable).parent / "orca")  # the console script beside this interpreter


def run(smoke: bool, workdir: Path) -> list[Row]:
    home = workdir / "home"
    names = languages(smoke)[:1] if smoke else languages(smoke)  # smoke: one command is proof enough
    for name in names:
        fill_inbox(home, name, smoke, language=name)
    orca = ORCA
    with StandIn(cost_fixed=COST) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCA_", "DAGSTER_"))}
        env.update(ORCA_HOME=str(home), OLLAMA_HOST=server.url, ORCA_EMBEDDER="ollama",
                   ORCA_EMBED_MODEL="nomic-embed-text", DAGSTER_DISABLE_TELEMETRY="1")
        server.reset()
        per: list[float] = []
        with Timer() as total:
            for name in names:
                with Timer() as one:
                    subprocess.run([orca, "materialize", name], env=env, cwd=ROOT, check=True,
                                   capture_output=True, text=True)
                per.append(one.seconds)
        stats = server.stats()
        with Timer() as unchanged:
            subprocess.run([orca, "materialize", names[0]], env=env, cwd=ROOT, check=True, capture_output=True)
    busy = stats["busy_seconds"]
    ratio = total.seconds / busy
    met, margin = verdict_max(ratio, TARGET)
    overhead = total.seconds - busy
    return [Row(
        f"2 whole corpus: {len(names)} x `orca materialize`",
        f"{stats['inputs_embedded']} inputs in {stats['embed_requests']} requests: wall {total.seconds:.1f} s, "
        f"server busy {busy:.1f} s",
        ratio, "server busy time", f"<= {TARGET}", met, margin,
        [f"per command: {', '.join(f'{n} {s:.1f} s' for n, s in zip(names, per))}",
         f"wall beyond busy: {overhead:.1f} s, {overhead / len(names):.1f} s per command; one more "
         f"`orca materialize {names[0]}` with nothing changed took {unchanged.seconds:.1f} s"],
    )]
