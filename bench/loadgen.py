"""A small keep-alive HTTP/1.1 load generator on asyncio streams (fast enough not to be the bottleneck)."""

from __future__ import annotations

import asyncio
import time


async def _client(host: str, port: int, request: bytes, until: float, latencies: list[float], errors: list[int]):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status >= 300:
                errors.append(status)
    finally:
        writer.close()


def load(port: int, path: str, body: bytes, clients: int, seconds: float, host: str = "127.0.0.1") -> dict:
    """POST `body` to `path` from `clients` connections for `seconds`; requests/s and latency percentiles."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> float:
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(_client(host, port, request, until, latencies, errors) for _ in range(clients)))
        return time.perf_counter() - started

    wall = asyncio.run(main())
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {"requests": len(latencies), "rps": len(latencies) / wall, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "errors": len(errors), "statuses": sorted(set(errors))}
