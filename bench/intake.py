"""Benchmark 5, intake: how fast does the REST intake accept documents, each durably stored before the reply?

`python -m orca_intake` (one uvicorn worker, loopback, no token) on a fresh ORCA_HOME, loaded by 16 concurrent
keep-alive clients (`bench/loadgen.py`, asyncio) posting JSON to `/v1/collections/bench/documents`: one
document per post, then a hundred per post. Baseline, same run and same client: a bare uvicorn endpoint that
reads the body and returns a constant (`bench/const_app.py`), posted the one-document body. Second
reference, same run: a bare FastAPI endpoint that parses the same body with the same pydantic model and
returns a constant (no storage): the framework's own ceiling against the baseline. Targets:
one-document posts at least 25% of the baseline's requests per second; hundred-document posts at least
5,000 documents per second.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

from bench.common import PYTHON, ROOT, Row, verdict_min
from bench.loadgen import load

CLIENTS = 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(args: list[str], port: int, env: dict, probe: str) -> subprocess.Popen:
    proc = subprocess.Popen([PYTHON, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{args} did not start listening on {port}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _body(docs: int) -> bytes:
    text = "A short document posted to the intake benchmark. " * 8
    return json.dumps({"documents": [{"text": text} for _ in range(docs)]}).encode()


def _measure(args: list[str], ready: str, env: dict, loads: list[tuple[str, int]], seconds: float) -> list[dict]:
    """Serve `args` on a free port, then load each (path, documents per post) in turn with CLIENTS clients."""
    port = _free_port()
    server = _serve([*args, "--port", str(port)], port, env, ready)
    try:
        return [load(port, path, _body(documents), CLIENTS, seconds) for path, documents in loads]
    finally:
        _stop(server)


def run(smoke: bool, workdir: Path) -> list[Row]:
    seconds = 1.0 if smoke else 8.0
    env = {k: v for k, v in os.environ.items() if k not in ("ORCA_INTAKE_TOKENS",)}
    # The intake's own speed is measured: one client posting as fast as it can, so no rate limit.
    env.update(ORCA_HOME=str(workdir / "home"), ORCA_EMBEDDER="hashing", ORCA_INTAKE_RATE_LIMIT="off")
    workdir.mkdir(parents=True, exist_ok=True)

    post = "/v1/collections/bench/documents"
    uvicorn = ["-m", "uvicorn", "--log-level", "warning"]
    baseline, = _measure([*uvicorn, "bench.const_app:app"], "/", env, [("/", 1)], seconds)
    framework, = _measure([*uvicorn, "bench.const_app:fastapi_app"], "/docs", env, [(post, 1)], seconds)
    one, hundred = _measure(["-m", "orca_intake", "--log-level", "warning"], "/health/live", env,
                            [(post, 1), (post, 100)], seconds)
    stored = sum(1 for p in (workdir / "home" / "inbox" / "bench").rglob("*.txt"))

    def describe(r: dict) -> str:
        errors = f", {r['errors']} errors {r['statuses']}" if r["errors"] else ""
        return f"{r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms{errors}"

    ratio = one["rps"] / baseline["rps"]
    met, margin = verdict_min(ratio, 0.25)
    docs_per_s = hundred["rps"] * 100
    met100, margin100 = verdict_min(docs_per_s, 5000)
    note = (f"baseline (bare uvicorn constant): {describe(baseline)}; bare FastAPI endpoint parsing the same "
            f"body with the same pydantic model, no storage: {describe(framework)} "
            f"({framework['rps'] / baseline['rps']:.3f} of the baseline; the intake reaches "
            f"{one['rps'] / framework['rps']:.2f} of it); {CLIENTS} clients, {seconds:.0f} s per scenario; "
            f"{stored} documents found in the inbox afterwards")
    return [
        Row("5 intake: one-document posts", describe(one), ratio, f"bare uvicorn {baseline['rps']:.0f} req/s",
            ">= 0.25", met and not one["errors"], margin, [note],
            why=f"a bare FastAPI endpoint with the same body and model, storing nothing, reaches "
                f"{framework['rps'] / baseline['rps']:.3f} of the baseline in this run; the intake reaches "
                f"{one['rps'] / framework['rps']:.2f} of that with every document durable (see 'Where the time goes')"),
        Row("5 intake: hundred-document posts", f"{docs_per_s:.0f} documents/s; {describe(hundred)}",
            docs_per_s / 5000, "target 5,000 documents/s", ">= 5,000 docs/s", met100 and not hundred["errors"],
            margin100, why="creating and renaming two files per document takes most of the writer thread's time, "
                           "and more under other disk or CPU load (see 'Where the time goes')"),
    ]
