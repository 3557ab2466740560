"""Child process of the memory benchmark: materialize one synthetic collection asset by asset and report peaks.

`python bench/memory_child.py HOME` prints one JSON line: the resident memory after imports, and for each
asset the peak resident memory (VmHWM) while it ran (the peak is reset between assets through
/proc/self/clear_refs, so each figure is that asset's own peak), plus the row counts.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dagster as dg  # noqa: E402

from orca_assets.jobs import embedding_assets  # noqa: E402
from orca_resources.hashing_embedder import HashingEmbedderResource  # noqa: E402
from orca_resources.warehouse import WarehouseResource  # noqa: E402

CHUNK_TOKENS = 48


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def main(home: str) -> int:
    report: dict = {"after_imports_kib": status_kib("VmRSS"), "steps": {}}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("collections", ["synthetic"])
        resources = {"embedder": HashingEmbedderResource(dimensions=768), "warehouse": WarehouseResource(home=home)}
        config = {"ops": {"chunks": {"config": {"max_tokens": CHUNK_TOKENS, "overlap_tokens": 8}}}}
        for asset in embedding_assets:
            report["peak_reset"] = reset_peak()
            start_kib = status_kib("VmRSS")
            started = time.perf_counter()
            result = dg.materialize(
                [asset], partition_key="synthetic", instance=instance, resources=resources,
                run_config=config if asset.key.path[-1] == "chunks" else {}, raise_on_error=True,
            )
            meta = {}
            for event in result.get_asset_materialization_events():
                meta = {k: v.value for k, v in event.materialization.metadata.items()}
            report["steps"][asset.key.path[-1]] = {
                "start_kib": start_kib, "peak_kib": status_kib("VmHWM"), "seconds": round(time.perf_counter() - started, 2),
                "rows": meta.get("dagster/row_count"),
            }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
