"""Benchmark 4 on an object store: is an inbox tick cheap when nothing changed and the inbox is on S3?

A SeaweedFS server (`weed mini`, started by tests/s3_server.py) holds 100,000 small objects in 10 collections
under `s3://<bucket>/bench/inbox/` (10 x 20 at smoke size). `inbox_sensor` is evaluated directly
(`dg.build_sensor_context`) with `ORCA_STORAGE_URL` on that bucket: a first tick sees every collection and
requests its run, then the steady state is measured: unchanged ticks against a bare paginated ListObjectsV2
of the same prefix with the same boto3 client (only the pages' keys counted), alternating, median of 3 each.
Target: the tick costs at most 1.5 times the bare listing (an unchanged tick has to list every object once;
the rest should be small beside it).

The objects are written with SeaweedFS's own bulk loader (`weed filer.copy` into the bucket's folder), at about
3,000 objects/s on this 2-core machine, against about 500/s through S3 PUTs: a single PUT costs the server
about 1 ms of CPU and boto3 as much again, which would take the benchmark past its 2 minutes. The listing
returns the same fields either way, except that such objects have an empty ETag (SeaweedFS records no MD5 for
them): about 30 bytes less per object in the listing, on both sides of the ratio.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
from collections import deque
from contextlib import contextmanager
from pathlib import Path

from bench.common import Row, Timer, verdict_max
from bench.sensor_ticks import inbox_ticks

TARGET = 1.5
REPEATS = 3
PREFIX = "bench"
PAYLOAD = b"A small document for the S3 sensor benchmark.\n" * 4


def _write_collection(folder: Path, objects: int) -> None:
    for sub in range(10):
        (folder / f"s{sub}").mkdir(parents=True, exist_ok=True)
    for index in range(objects):
        fd = os.open(folder / f"s{index % 10}" / f"f{index:06d}.md", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, PAYLOAD + str(index).encode())
        finally:
            os.close(fd)


def _bulk_load(server, bucket: str, collections: int, objects: int, scratch: Path) -> None:
    """Write each collection's files into a scratch folder and copy them into the bucket's `PREFIX/inbox/`
    through the server's filer (see the docstring), two collections in flight while the next is written."""
    from tests.s3_server import weed_binary

    ports = dict(arg.lstrip("-").split("=", 1) for arg in server.process.argv if arg.startswith("-filer.port"))
    # A filer address is host:port.grpcport (weed mini's gRPC ports are not the default port + 10000).
    target = f"http://127.0.0.1:{ports['filer.port']}.{ports['filer.port.grpc']}/buckets/{bucket}/{PREFIX}/inbox/"
    in_flight: deque[tuple[Path, subprocess.Popen]] = deque()

    def finish() -> None:
        folder, copy = in_flight.popleft()
        output, _ = copy.communicate(timeout=600)
        shutil.rmtree(folder)
        if copy.returncode != 0:
            raise RuntimeError(f"weed filer.copy failed: {output[-2000:]}")

    try:
        for c in range(collections):
            folder = scratch / f"c{c:03d}"
            _write_collection(folder, objects)
            copy = subprocess.Popen([str(weed_binary()), "filer.copy", "-c=16", str(folder), target],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
            in_flight.append((folder, copy))
            if len(in_flight) > 2:
                finish()
        while in_flight:
            finish()
    finally:
        for _, copy in in_flight:
            copy.kill()
            copy.wait()


def _scratch_root(workdir: Path) -> Path:
    """Where the files to copy are written: memory (/dev/shm) where there is one, as file creation on a disk
    costs more than the copy's own work here."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else workdir


@contextmanager
def _environment(values: dict[str, str]):
    """The AWS settings of the server for this process (boto3 reads them), restored afterwards."""
    from orca_core.storage import open_storage

    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    open_storage.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        open_storage.cache_clear()


def _bare_listing(client, bucket: str) -> int:
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/inbox/"):
        count += len(page.get("Contents", []))
    return count


def run(smoke: bool, workdir: Path) -> list[Row]:
    from tests.s3_server import start_server

    collections, objects = (10, 20) if smoke else (10, 10_000)
    workdir.mkdir(parents=True, exist_ok=True)
    server = start_server()
    try:
        bucket = server.create_bucket("orca-bench")
        with tempfile.TemporaryDirectory(prefix="orca-s3-tree-", dir=_scratch_root(workdir)) as tree, Timer() as load:
            _bulk_load(server, bucket, collections, objects, Path(tree))
        with _environment(server.env()):
            return [_measure(workdir, bucket, collections, load.seconds)]
    finally:
        server.stop()


def _measure(workdir: Path, bucket: str, collections: int, load_s: float) -> Row:
    from orca_resources.intake_queue_resource import IntakeQueueResource
    from orca_resources.warehouse import WarehouseResource

    home = workdir / "home"
    warehouse = WarehouseResource(home=str(home), storage_url=f"s3://{bucket}/{PREFIX}")
    resources = {"warehouse": warehouse, "intake_queue": IntakeQueueResource(home=str(home))}
    client = warehouse.storage.objects.client  # the sensor's own client: same connections, same configuration
    with inbox_ticks(resources) as (tick, waited):
        first_s, first = tick()
        first_wait = sum(waited)
        requested = len(first.run_requests or [])
        assert requested == collections, f"the first tick requested {requested} runs for {collections} collections"
        ticks, listings = [], []
        for _ in range(REPEATS):  # alternating, so drift on the machine touches both alike
            with Timer() as bare:
                found = _bare_listing(client, bucket)
            listings.append(bare.seconds)
            seconds, result = tick()
            assert not result.run_requests, "an unchanged inbox requested a run"
            ticks.append(seconds)
        summary = result.skip_reason.skip_message.split("; ", 1)[1]
    tick_s, list_s = statistics.median(ticks), statistics.median(listings)
    ratio = tick_s / list_s
    met, margin = verdict_max(ratio, TARGET)
    return Row(
        "4 sensor on S3: unchanged tick",
        f"{found} objects in {collections} collections on SeaweedFS: tick {tick_s * 1000:.0f} ms, bare paginated "
        f"ListObjectsV2 {list_s * 1000:.0f} ms (medians of {REPEATS}): the tick costs {ratio:.2f} x the listing",
        ratio, "bare paginated ListObjectsV2 of the inbox", f"<= {TARGET}", met, margin,
        [f"{found} objects written in {load_s:.0f} s (files written to a scratch folder, then weed filer.copy)",
         f"an unchanged tick: {summary}",
         f"first tick (registers the collections, requests their {requested} runs): {first_s * 1000:.0f} ms of "
         f"work and {first_wait:.1f} s of confirming wait",
         f"ticks {', '.join(f'{s * 1000:.0f}' for s in ticks)} ms; listings "
         f"{', '.join(f'{s * 1000:.0f}' for s in listings)} ms"],
        why=f"the tick's own work beside the listing is {(tick_s - list_s) * 1000:.0f} ms",
    )
