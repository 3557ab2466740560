"""Benchmark 13, fleet: do several one-slot Ollama servers multiply throughput, and does a dying one lose anything?

One collection of four corpus languages (two synthetic folders at smoke size) is embedded in-process against
one, then four one-slot stand-ins at 2 ms per input (`OLLAMA_HOST` as a comma-separated list), re-embedding
the same chunks each time (`force`). Throughput is inputs over the `embeddings` asset's embedding phase
(`embed_seconds`: first request to last batch stored); a server's busy share is its modeled busy time over
that phase. Then four servers again, one of them killed (SIGKILL) about a third of the way through: the
other three must finish the collection with every chunk embedded once in the index.

Targets (issue 16): four servers at least 3.8 times one server's throughput, each busy at least 95% of the
embedding phase; with a host dying, nothing lost.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from pathlib import Path

import dagster as dg

from bench.common import CORPUS, Row, StandIn, materialize, metadata, verdict_min, write_synthetic

COST = 0.002
LANGUAGES = ("en", "de", "fr", "es")
TARGET_SPEEDUP = 3.8
TARGET_BUSY = 0.95


def _fill(home: Path, smoke: bool) -> str:
    inbox = home / "inbox" / "fleet"
    found = [lang for lang in LANGUAGES if (CORPUS / lang).is_dir()]
    if smoke or len(found) < len(LANGUAGES):
        for index, lang in enumerate(LANGUAGES[:2]):
            write_synthetic(inbox / lang, docs=10 if smoke else 300, paragraphs=8, seed=index + 3)
        return "synthetic documents (corpus absent or smoke size)"
    for lang in LANGUAGES:
        shutil.copytree(CORPUS / lang, inbox / lang)
    return f"corpus {', '.join(LANGUAGES)} in one collection ({sum(1 for p in inbox.rglob('*') if p.is_file())} files)"


def _embed(home: Path, servers: list[StandIn], instance, kill_after: float | None = None) -> dict:
    """One forced embedding of the collection over `servers`; its figures and each server's stats."""
    for server in servers:
        server.reset()
    embedder = _ollama(servers)
    killer = None
    if kill_after is not None:
        killer = threading.Timer(kill_after, servers[-1].proc.kill)
        killer.start()
    try:
        result = materialize(home, "fleet", embedder, instance, force=True)
    finally:
        if killer is not None:
            killer.cancel()
    embeddings, index = metadata(result, "embeddings"), metadata(result, "embedding_index")
    alive = servers[:-1] if kill_after is not None else servers
    stats = [server.stats() for server in alive]
    seconds = embeddings["embed_seconds"]
    return {
        "seconds": seconds,
        "inputs": embeddings["inputs_sent"],
        "failed": embeddings.get("failed", 0),
        "rows": index["dagster/row_count"],
        "chunks": metadata(result, "chunks")["total"],
        "busy": [s["busy_seconds"] / seconds for s in stats],
        "embedded": [s["inputs_embedded"] for s in stats],
    }


def run(smoke: bool, workdir: Path) -> list[Row]:
    home = workdir / "fleet"
    source = _fill(home, smoke)
    with dg.instance_for_test() as instance, contextlib.ExitStack() as stack:
        servers = [stack.enter_context(StandIn(cost_fixed=COST)) for _ in range(4)]
        materialize(home, "fleet", _ollama(servers[:1]), instance)  # documents and chunks, once
        one = _embed(home, servers[:1], instance)
        four = _embed(home, servers, instance)
        dying = _embed(home, servers, instance, kill_after=four["seconds"] / 3)
    speedup = (four["inputs"] / four["seconds"]) / (one["inputs"] / one["seconds"])
    met_speed, margin = verdict_min(speedup, TARGET_SPEEDUP)
    busiest_idle = min(four["busy"])
    shares = ", ".join(f"{share:.1%}" for share in four["busy"])
    lost = dying["chunks"] - dying["rows"]
    return [
        Row("13 fleet: four one-slot servers against one",
            f"{four['inputs']} inputs: one server {one['inputs'] / one['seconds']:.0f} inputs/s "
            f"({one['seconds']:.1f} s), four {four['inputs'] / four['seconds']:.0f} inputs/s ({four['seconds']:.1f} s); "
            f"busy shares {shares}", speedup, "one server's throughput, same chunks",
            f">= {TARGET_SPEEDUP} and every server busy >= {TARGET_BUSY:.0%}",
            met_speed and busiest_idle >= TARGET_BUSY, margin + f"; least busy {busiest_idle:.1%}",
            notes=[source, f"one server busy {one['busy'][0]:.1%} of its phase"]),
        Row("13 fleet: four servers, one killed a third of the way through",
            f"{dying['rows']} of {dying['chunks']} chunks in the index, {dying['failed']} failed; "
            f"{dying['inputs'] / dying['seconds']:.0f} inputs/s over the phase ({dying['seconds']:.1f} s); "
            f"the three left embedded {sum(dying['embedded'])} inputs, busy "
            + ", ".join(f"{share:.1%}" for share in dying["busy"]),
            (dying["inputs"] / dying["seconds"]) / (one["inputs"] / one["seconds"]),
            "one server's throughput, same chunks", "nothing lost", lost == 0 and dying["failed"] == 0,
            f"{lost} chunks missing"),
    ]


def _ollama(servers: list[StandIn]):
    from orca_resources.ollama import OllamaResource

    return OllamaResource(host=",".join(server.url for server in servers), model="nomic-embed-text")
