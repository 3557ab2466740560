"""The one Dagster code server `orca up` runs, shared by the webserver and the daemon.

Without it, `dagster-webserver` and `dagster-daemon run` would each load Orca's definitions in a code server
of their own. `dagster code-server start` loads them once; both connect to it through a workspace file with a
`grpc_server` entry that keeps the code location's usual name, so runs and links look the same either way.
The daemon launches runs through it too (Dagster's default run launcher starts them on the code server).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from orca_core.settings import OrcaSettings

DEFAULT_MODULE = "orca.definitions"
LOOPBACK = "127.0.0.1"
WORKSPACE_FILE = "code-server-workspace.yaml"  # written into DAGSTER_HOME at every start


class CodeServerPortTaken(RuntimeError):
    """ORCA_CODE_SERVER_PORT names a port something else listens on."""


@dataclass(frozen=True)
class CodeLocation:
    """What the code server loads (`-m module` or `-f file`) and the location's name in Dagster."""

    args: tuple[str, ...]
    name: str


def code_location(module: str | None, workspace: Path | None) -> CodeLocation:
    """`module` when given; else the single location of the project's workspace.yaml; else Orca's module.

    The names match what `-m MODULE` or `-w workspace.yaml` gave the webserver before: the module's name,
    or the workspace's `location_name`."""
    if module:
        return CodeLocation(("-m", module), module)
    if workspace is None:
        return CodeLocation(("-m", DEFAULT_MODULE), DEFAULT_MODULE)
    entries = (yaml.safe_load(workspace.read_text(encoding="utf-8")) or {}).get("load_from") or []
    if len(entries) != 1:
        raise ValueError(f"{workspace}: `orca up` serves exactly one code location, found {len(entries)}")
    (kind, target), = entries[0].items()
    if kind == "python_module":
        target = {"module_name": target} if isinstance(target, str) else target
        return CodeLocation(("-m", target["module_name"]), target.get("location_name") or target["module_name"])
    if kind == "python_file":
        target = {"relative_path": target} if isinstance(target, str) else target
        path = (workspace.parent / target["relative_path"]).resolve()
        return CodeLocation(("-f", str(path)), target.get("location_name") or path.stem)
    raise ValueError(f"{workspace}: `orca up` can serve a python_module or python_file location, not {kind}")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def choose_port(settings: OrcaSettings) -> int:
    """ORCA_CODE_SERVER_PORT when set (CodeServerPortTaken when busy), else a port free right now."""
    if settings.code_server_port:
        if not port_is_free(settings.code_server_port):
            raise CodeServerPortTaken(
                f"ORCA_CODE_SERVER_PORT={settings.code_server_port} is taken (another `orca up`?): "
                "choose a free port, or unset it to let `orca up` pick one"
            )
        return settings.code_server_port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def server_argv(executable: str, location: CodeLocation, port: int) -> list[str]:
    """`dagster code-server start` on loopback, loading `location` under its usual name."""
    return [executable, "code-server", "start", "-h", LOOPBACK, "-p", str(port), *location.args,
            "--location-name", location.name]


def write_workspace(settings: OrcaSettings, location: CodeLocation, port: int) -> Path:
    """The workspace file pointing the webserver and the daemon at the code server."""
    workspace = {"load_from": [{"grpc_server": {"host": LOOPBACK, "port": port, "location_name": location.name}}]}
    path = settings.dagster_home / WORKSPACE_FILE
    tmp = path.with_name(f".{WORKSPACE_FILE}.{os.getpid()}.tmp")
    tmp.write_text("# Written by `orca up` at every start: its code server.\n" + yaml.safe_dump(workspace), "utf-8")
    os.replace(tmp, path)
    return path


def accepts_connections(port: int) -> bool:
    """True once the code server listens (it binds its port only after loading the code, or failing to)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_until_serving(port: int, timeout: float) -> bool:
    """Poll until the code server on `port` accepts connections; False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not accepts_connections(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


if __name__ == "__main__":
    # `python -m orca.code_server PORT`: the systemd unit's ExecStartPost, so that the webserver and the daemon
    # (ordered after it) start once the code is loaded.
    sys.exit(0 if wait_until_serving(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 170) else 1)
