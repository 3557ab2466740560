"""A private Docker daemon for the tests: Debian's `dockerd`, with its own data root, exec root and socket.

It runs without touching the host's network (`--iptables=false --bridge=none`: containers use the host's
network) and without a registry: the run image is built by deploy/docker/build-run-image.sh (`docker import`
of an empty root file system), and the interpreter, the virtualenv and the code are bind-mounted read-only.
Where dockerd is missing or cannot start, the tests that need it fail with the reason (`.ci/run` installs
docker.io), as the PostgreSQL tests do in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.processes import ManagedProcess

ROOT = Path(__file__).resolve().parent.parent
READY_SECONDS = 60.0


class DockerUnavailable(Exception):
    """dockerd cannot be started here; the message says why."""


@dataclass
class DockerDaemon:
    root: Path
    process: ManagedProcess

    @property
    def host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], env=self.env(), capture_output=True, text=True, timeout=timeout)

    def build_run_image(self, tag: str) -> str:
        done = subprocess.run(["bash", str(ROOT / "deploy" / "docker" / "build-run-image.sh"), tag], env=self.env(),
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise DockerUnavailable(f"build-run-image.sh failed: {done.stdout}{done.stderr}")
        return tag

    def stop(self) -> None:
        for line in self.docker("ps", "-aq").stdout.split():
            self.docker("rm", "-f", line)
        self.process.stop(timeout=30)
        subprocess.run(["umount", "-R", str(self.root / "data")], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def host_volumes(*extra: Path) -> list[str]:
    """Read-only binds that let the run image execute this interpreter and virtualenv, plus `extra` folders
    (read-write). The interpreter may live outside /usr (pyenv), so its prefix is bound too."""
    binds = {"/usr", "/etc", sys.base_prefix, sys.prefix, str(ROOT)}
    read_only = [f"{path}:{path}:ro" for path in sorted(binds) if not any(
        path != other and path.startswith(other.rstrip("/") + "/") for other in binds)]
    return read_only + [f"{path}:{path}:rw" for path in map(str, extra)]


def start_daemon() -> DockerDaemon:
    dockerd = shutil.which("dockerd")
    if dockerd is None or shutil.which("docker") is None:
        raise DockerUnavailable("dockerd or docker not found: install Debian's docker.io (.ci/run does)")
    root = Path(tempfile.mkdtemp(prefix="orca-dk-", dir="/tmp"))  # short: a unix socket path is limited
    process = ManagedProcess(
        [dockerd, "--iptables=false", "--bridge=none", f"--data-root={root / 'data'}",
         f"--exec-root={root / 'exec'}", "-H", f"unix://{root}/docker.sock", f"--pidfile={root / 'docker.pid'}"],
        env=os.environ, log_path=root / "dockerd.log",
    )
    daemon = DockerDaemon(root, process)
    deadline = time.monotonic() + READY_SECONDS
    while daemon.docker("version", timeout=10).returncode != 0:
        if not process.alive() or time.monotonic() > deadline:
            text = process.output()[-3000:]
            daemon.stop()
            raise DockerUnavailable(f"dockerd did not start:\n{text}")
        time.sleep(0.3)
    return daemon
