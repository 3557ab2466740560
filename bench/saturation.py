"""Benchmark 1, saturation: does the embedding server ever wait for Orca?

Materializes the `en` collection in-process against the one-slot stand-in at 2 ms per input and divides the
`embeddings` asset's embedding phase (its `embed_seconds`: from the first request to the last batch stored)
by the server's busy time. In the same run the same chunk texts (with the model's document prefix, as Orca
sends them) go through two plain clients: (a) one request per chunk, one after another, and (b) one request
holding every chunk.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import httpx
import numpy as np

from bench.common import Row, StandIn, Timer, fill_inbox, materialize, metadata, verdict_max

COST = 0.002
TARGET = 1.05
REPEATS = 3


def _plain_client(url: str, texts: list[str], per_request: int) -> float:
    """Wall seconds to embed `texts` in requests of `per_request` inputs, one after another, parsing answers."""
    with httpx.Client(timeout=httpx.Timeout(600.0)) as client, Timer() as timer:
        for start in range(0, len(texts), per_request):
            answer = client.post(f"{url}/api/embed", json={"model": "nomic-embed-text",
                                                          "input": texts[start:start + per_request]})
            answer.raise_for_status()
            np.asarray(answer.json()["embeddings"], dtype=np.float32)
    return timer.seconds


def _breakdown(wall: float, stats: dict) -> str:
    """Where wall time beyond the modeled busy time went, as the server saw its slot."""
    span = stats["last_release"] - stats["first_acquire"]
    return (
        f"embed phase {wall:.3f} s = modeled busy {stats['busy_seconds']:.3f} s + sleep overshoot in the slot "
        f"{stats['slot_seconds'] - stats['busy_seconds']:.3f} s + slot idle between requests "
        f"{span - stats['slot_seconds']:.3f} s + before the first / after the last request "
        f"{wall - span:.3f} s"
    )


def run(smoke: bool, workdir: Path) -> list[Row]:
    from orca_resources.ollama import OllamaResource
    from orca_resources.warehouse import WarehouseResource

    home = workdir / "saturation"
    source = fill_inbox(home, "en", smoke)
    rows: list[Row] = []
    with StandIn(cost_fixed=COST) as server, dg.instance_for_test() as instance:
        embedder = OllamaResource(host=server.url, model="nomic-embed-text")
        trials = []
        for trial in range(1 if smoke else REPEATS):
            server.reset()
            result = materialize(home, "en", embedder, instance, force=trial > 0)
            trials.append((metadata(result, "embeddings")["embed_seconds"], server.stats()))
        trials.sort(key=lambda t: t[0] / t[1]["busy_seconds"])
        wall, stats = trials[len(trials) // 2]  # the median trial
        busy = stats["busy_seconds"]
        ratio = wall / busy
        spread = ", ".join(f"{w / s['busy_seconds']:.3f}" for w, s in trials)
        met, margin = verdict_max(ratio, TARGET)
        rows.append(Row(
            "1 saturation: Orca (batches of 32, 2 in flight)",
            f"{stats['inputs_embedded']} inputs, {stats['embed_requests']} requests: embed phase {wall:.2f} s, "
            f"server busy {busy:.2f} s (slot held {stats['slot_seconds']:.2f} s)",
            ratio, "server busy time", f"<= {TARGET}", met, margin, [source, f"median of {len(trials)} trials (the later ones with force=True, same chunks): {spread}",
             _breakdown(wall, stats)],
        ))
        table = WarehouseResource(home=str(home)).read("en", "chunks.parquet", columns=["text"])
        prefix = embedder.model_info().document_prefix
        texts = [prefix + t for t in dict.fromkeys(table["text"].to_pylist())]
        for label, size, reference in (("(a) one request per chunk, sequential", 1, "~1.35"),
                                       ("(b) one request holding every chunk", len(texts), "~1.05")):
            server.reset()
            seconds = _plain_client(server.url, texts, size)
            stats = server.stats()
            rows.append(Row(
                f"1 saturation: plain client {label}",
                f"{stats['inputs_embedded']} inputs, {stats['embed_requests']} requests: wall {seconds:.2f} s, "
                f"busy {stats['busy_seconds']:.2f} s",
                seconds / stats["busy_seconds"], "server busy time", f"reference {reference}", None,
            ))
    return rows
