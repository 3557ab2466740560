"""Benchmark 8, model load: does `load_model` (prepare_model_job) spare the first query the model's load?

Ollama loads a model on its first use and keeps it loaded for `keep_alive`. The Ollama stand-in
(`tests/ollama_standin.py`, in this process) models that load as a sleep of `LOAD_SECONDS` on the first
embed. Each trial starts a fresh stand-in, so the model starts unloaded. Measured with `OllamaClient` and
`ollama_models.load`, the calls `prepare_model_job` makes: (a) the first query on a server that has not
loaded the model, the baseline, which pays the load; (b) the first query after a `load`; (c) a second
`load` while the model is loaded, against the first `load`. The median trial is reported.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.common import Row, Timer, verdict_max

LOAD_SECONDS = 0.5
SMOKE_LOAD_SECONDS = 0.05
REPEATS = 5
TARGET = 0.1
MODEL = "nomic-embed-text"


def _trial(load_seconds: float) -> dict[str, float]:
    """Seconds of a cold first query, a query after `load`, and a first and a second `load` call."""
    from orca_resources.ollama_client import OllamaClient, OllamaConfig
    from orca_resources.ollama_models import load
    from tests.ollama_standin import OllamaStandIn

    times: dict[str, float] = {}
    with OllamaStandIn(load_seconds=load_seconds) as server, OllamaClient(OllamaConfig(host=server.url)) as client:
        client.model_info()  # resolved first: /api/tags and /api/show do not load the model
        with Timer() as cold:
            client.embed_query("tides and moons")
        times["cold_query"] = cold.seconds
    with OllamaStandIn(load_seconds=load_seconds) as server, OllamaClient(OllamaConfig(host=server.url)) as client:
        client.model_info()
        first = load(client, server.url, "30m")
        with Timer() as warm:
            client.embed_query("tides and moons")
        second = load(client, server.url, "30m")
        times.update(warm_query=warm.seconds, first_load=first.seconds, second_load=second.seconds)
    return times


def run(smoke: bool, workdir: Path) -> list[Row]:
    load_seconds = SMOKE_LOAD_SECONDS if smoke else LOAD_SECONDS
    trials = [_trial(load_seconds) for _ in range(1 if smoke else REPEATS)]

    def median(key: str) -> float:
        return statistics.median(t[key] for t in trials)

    cold, warm = median("cold_query"), median("warm_query")
    first, second = median("first_load"), median("second_load")
    note = f"stand-in load {load_seconds} s; median of {len(trials)} trial(s), each on a fresh stand-in"
    rows = []
    ratio = warm / cold
    met, margin = verdict_max(ratio, TARGET)
    rows.append(Row(
        "8 model load: first query after load_model",
        f"{warm * 1000:.1f} ms after load_model; {cold * 1000:.1f} ms without it",
        ratio, "first query on a server that has not loaded the model", f"<= {TARGET}", met, margin, [note],
    ))
    ratio = second / first
    met, margin = verdict_max(ratio, TARGET)
    rows.append(Row(
        "8 model load: load_model again while loaded",
        f"second call {second * 1000:.1f} ms; first call {first * 1000:.1f} ms",
        ratio, "first load_model call", f"<= {TARGET}", met, margin,
    ))
    return rows
