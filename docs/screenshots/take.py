"""Takes the README's webserver screenshots: `.venv/bin/python docs/screenshots/take.py`.

Starts `orca up` on a temporary ORCA_HOME with the offline embedder and free ports, materializes the samples
collection twice (so its plots have two points), and photographs three pages with headless Chromium: the asset
graph, the samples partition of `embeddings` with its metadata, and the run. The PNGs are reduced to 256
colours so each stays well under 300 KB. Needs Chromium at /usr/bin/chromium (Debian's package) and Pillow.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PAGES = {
    "asset-graph.png": "/locations/orca/asset-groups/embedding",
    "collection-partition.png": "/assets/embeddings?view=partitions&partition=samples",
    "run.png": "/runs/{run_id}",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def screenshot(url: str, target: Path, profile: Path) -> None:
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--window-size=1400,900",
         f"--screenshot={target}", url],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    Image.open(target).convert("RGB").quantize(colors=256).save(target, optimize=True)


def dismiss_welcome(web: str) -> None:
    """The webserver greets a new instance on localhost with a community dialog; mark it seen, as Skip does."""
    request = urllib.request.Request(f"{web}/graphql", data=b'{"query": "mutation { setNuxSeen }"}',
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10):
        pass


def latest_run_id(dagster_home: Path) -> str:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (run,) = instance.get_runs(dg.RunsFilter(job_name="embed_collection_job"), limit=1)
        return run.run_id


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="orca-shots-") as tmp:
        home, port = Path(tmp) / "home", free_port()
        env = {**os.environ, "ORCA_HOME": str(home), "ORCA_EMBEDDER": "hashing",
               "ORCA_WEBSERVER_PORT": str(port), "ORCA_INTAKE_PORT": str(free_port())}  # fmt: skip
        env.pop("DAGSTER_HOME", None)
        up = subprocess.Popen([BIN / "orca", "up"], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            web = f"http://127.0.0.1:{port}"
            wait_for(f"{web}/server_info")
            for extra in ([], ["--force"]):
                subprocess.run([BIN / "orca", "materialize", "samples", *extra], env=env, check=True,
                               capture_output=True, timeout=300)  # fmt: skip
            run_id = latest_run_id(home / "dagster")
            dismiss_welcome(web)
            for name, path in PAGES.items():
                screenshot(web + path.format(run_id=run_id), HERE / name, Path(tmp) / "chromium")
                print(f"{HERE / name}: {(HERE / name).stat().st_size // 1024} KB")
        finally:
            os.killpg(up.pid, signal.SIGTERM)
            try:
                up.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
