"""The supervisor of `orca up` on its own: how it counts the way its children end, and where their output goes."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from orca.child_output import ChildOutput
from orca.supervisor import ChildSpec, Supervisor
from tests.processes import wait_until

# Children that mark a file once their SIGTERM handling is in place, then wait to be stopped.
RERAISES_SIGTERM = """
import os, pathlib, signal, sys, time
def stop(signum, frame):  # clean up, then die of the signal, as uvicorn does: exit status -15
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
signal.signal(signal.SIGTERM, stop)
pathlib.Path(sys.argv[1]).touch()
time.sleep(60)
"""
EXITS_3_ON_SIGTERM = """
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
pathlib.Path(sys.argv[1]).touch()
time.sleep(60)
"""
DEFAULT_SIGTERM = """
import pathlib, sys, time
pathlib.Path(sys.argv[1]).touch()
time.sleep(60)
"""


@pytest.mark.timeout(60)
def test_supervisor_counts_death_by_its_own_sigterm_as_a_clean_stop(tmp_path):
    supervisor = Supervisor(dict(os.environ), log=lambda line: None)
    codes = {"plain": DEFAULT_SIGTERM, "reraising": RERAISES_SIGTERM, "failing": EXITS_3_ON_SIGTERM}
    for name, code in codes.items():
        supervisor.start(ChildSpec(name, [sys.executable, "-c", code, str(tmp_path / name)]))
    wait_until(lambda: all((tmp_path / name).exists() for name in codes), timeout=30)

    outcomes = {child.spec.name: how for child, how in supervisor.stop(timeout=20)}

    returncodes = {child.spec.name: child.process.returncode for child in supervisor.children}
    assert returncodes == {"plain": -signal.SIGTERM, "reraising": -signal.SIGTERM, "failing": 3}
    assert outcomes == {"plain": "stopped", "reraising": "stopped", "failing": "exited with code 3"}


# Far more than a pipe holds (64 KiB), with colour codes as Dagster writes them, then a mark once all is written.
CHATTY = """
import pathlib, sys, time
for i in range(20000):
    print(f"\\x1b[32mline {i:05d}\\x1b[0m " + "x" * 90)
sys.stdout.flush()
pathlib.Path(sys.argv[1]).touch()
time.sleep(60)
"""


@pytest.mark.timeout(60)
def test_a_chatty_child_never_blocks_and_its_log_rotates(tmp_path):
    logs = tmp_path / "logs"
    supervisor = Supervisor(
        dict(os.environ), log=lambda line: None,
        output=lambda spec: ChildOutput(logs / f"{spec.name}.log", max_bytes=256 * 1024, backups=2),
    )
    supervisor.start(ChildSpec("chatty", [sys.executable, "-c", CHATTY, str(tmp_path / "done")]))
    wait_until(lambda: (tmp_path / "done").exists(), timeout=30, message="the child blocked writing its output")
    wait_until(lambda: "line 19999" in (logs / "chatty.log").read_text(), timeout=10)
    supervisor.stop(timeout=10)

    assert sorted(p.name for p in logs.iterdir()) == ["chatty.log", "chatty.log.1", "chatty.log.2"]
    assert all(p.stat().st_size <= 256 * 1024 for p in logs.iterdir())
    assert "\x1b[" not in (logs / "chatty.log").read_text()
    (child,) = supervisor.children
    assert child.output.tail()[-1].startswith("line 19999 ")
