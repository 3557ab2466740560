"""Child process of the search benchmark: one long-lived searching process, as the intake is.

Reads commands as JSON lines on stdin and answers each with one JSON line:
  {"op": "queries", "seed": S, "count": N, "k": K, "team": T|null, "exact": bool}
      runs N queries (VectorSource(...).queries with that seed) one at a time through the search copy
      (or, with "exact", the brute-force scan of every live row) and answers the latencies and the chunk ids;
  {"op": "status"}  the resident memory now and its peak (VmRSS, VmHWM; KiB), and the peak is reset.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.search_vectors import VectorSource
from orca_core.ann import open_search_copy
from orca_core.search_filter import SearchFilter


def status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def exact(copy, query: np.ndarray, k: int) -> list[str]:
    best = []
    for position, segment in enumerate(copy.segments):
        rows, scores = segment._exact(query, k, segment.keep(None))
        best += [(float(s), position, int(r)) for r, s in zip(rows, scores, strict=True)]
    best.sort(key=lambda hit: (-hit[0], hit[1], hit[2]))
    return [copy.segments[p].take([r])[0]["chunk_id"] for _, p, r in best[:k]]


def main() -> None:
    folder, dimensions = Path(sys.argv[1]), int(sys.argv[2])
    source = VectorSource(dimensions)
    print(json.dumps({"imports_rss_kib": status("VmRSS")}), flush=True)  # before any copy is opened
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "status":
            answer = {"rss_kib": status("VmRSS"), "hwm_kib": status("VmHWM")}
            Path("/proc/self/clear_refs").write_text("5")
        else:
            queries = source.block(command["count"], seed=command["seed"])
            where = SearchFilter(metadata={"team": command["team"]}) if command.get("team") else None
            latencies, found = [], []
            for query in queries:
                started = time.perf_counter()
                copy = open_search_copy(folder)  # what every search does: a stat, and a reopen when it changed
                if command.get("exact"):
                    ids = exact(copy, query / np.linalg.norm(query), command["k"])
                else:
                    ids = [row["chunk_id"] for row in copy.search(query, command["k"], where)]
                latencies.append(time.perf_counter() - started)
                found.append(ids)
            answer = {"latencies": latencies, "found": found}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
