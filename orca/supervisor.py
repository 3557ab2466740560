"""A tiny process supervisor for `orca up`: start children, watch them, stop them all cleanly.

Each child runs in its own process group, so a stop also reaches what it started itself (the code
server's workers, runs), and Ctrl-C in the terminal reaches only Orca, which then stops the children in
order. Given an `output` factory, a child's stdout and stderr go through a pipe that a thread drains into
its log (orca/child_output.py); without one, the child writes to Orca's own terminal.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from orca.child_output import ChildOutput

STOP_TIMEOUT_SECONDS = 20.0
# How a child that got our SIGTERM may end and still count as a clean stop: 0, or killed by that very signal
# (uvicorn re-raises SIGTERM after its graceful shutdown, so the intake ends with -15; a shell wrapper reports 143).
CLEAN_STOP_CODES = frozenset({0, -signal.SIGTERM, 128 + signal.SIGTERM})


@dataclass
class ChildSpec:
    """A process `orca up` runs: a name for messages, its command line, and the URL it serves (if any)."""

    name: str
    argv: list[str]
    url: str | None = None
    ready_path: str | None = None  # GET this under `url` to know the child serves
    ready_port: int | None = None  # or: the child serves once this loopback TCP port accepts connections


@dataclass
class Child:
    """A started child process."""

    spec: ChildSpec
    process: subprocess.Popen = field(repr=False)
    output: ChildOutput | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """Also the id of the child's process group."""
        return self.process.pid


def _die_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM if `orca up` itself is killed, so nothing is orphaned."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Supervisor:
    """Runs a set of children until one of them dies or a stop is requested."""

    def __init__(
        self, env: dict[str, str], log: Callable[[str], None], output: Callable[[ChildSpec], ChildOutput] | None = None
    ):
        self.env = env
        self.log = log
        self.output = output
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self.stop_reason = ""

    def start(self, spec: ChildSpec) -> Child:
        """Start `spec` in its own process group with the shared environment."""
        output = self.output(spec) if self.output is not None else None
        piped = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL} if output else {}
        process = subprocess.Popen(spec.argv, env=self.env, process_group=0, preexec_fn=_die_with_parent, **piped)
        if output is not None:
            output.follow(process.stdout, spec.name)
        child = Child(spec, process, output)
        self.children.append(child)
        return child

    def install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM ask for a clean stop instead of killing Orca mid-way."""

        def request_stop(signum, _frame):
            self.stop_reason = signal.Signals(signum).name
            self.stop_requested.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    def dead_child(self) -> Child | None:
        """The first child that has exited, if any."""
        return next((c for c in self.children if c.process.poll() is not None), None)

    def wait(self, poll_seconds: float = 0.5) -> Child | None:
        """Block until a stop is requested (return None) or a child dies (return it)."""
        while not self.stop_requested.wait(poll_seconds):
            dead = self.dead_child()
            if dead is not None:
                return dead
        return None

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> list[tuple[Child, str]]:
        """Terminate every child, wait up to `timeout`, then kill what is left, down to grandchildren.

        Returns how each child ended, in start order: "stopped" for a clean stop (see CLEAN_STOP_CODES),
        otherwise what happened ("exited with code 1", "killed after 20s", ...).
        """
        # Newest first: the intake stops accepting, then the daemon stops launching runs, then the webserver.
        terminated: set[int] = set()
        for child in reversed(self.children):
            if child.process.poll() is None:
                self.log(f"stopping {child.spec.name} (pid {child.pid})")
                child.process.terminate()
                terminated.add(child.pid)
        deadline = time.monotonic() + timeout
        killed: set[int] = set()
        for child in self.children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{child.spec.name} did not stop within {timeout:.0f}s: killing it")
                _signal_group(child.pid, signal.SIGKILL)
                child.process.wait()
                killed.add(child.pid)
        outcomes = []
        for child in self.children:
            code = child.process.returncode
            if child.pid in killed:
                how = f"killed after not stopping within {timeout:.0f}s"
            elif child.pid in terminated and code in CLEAN_STOP_CODES:
                how = "stopped"
            else:
                how = describe_exit(code)
            outcomes.append((child, how))
        # A child that exited may leave its own children (code servers) behind in its group.
        for child in self.children:
            _signal_group(child.pid, signal.SIGTERM)
        grace = time.monotonic() + 5
        while any(_group_alive(c.pid) for c in self.children) and time.monotonic() < grace:
            time.sleep(0.1)
        for child in self.children:
            _signal_group(child.pid, signal.SIGKILL)
        for child in self.children:
            if child.output is not None:
                child.output.finish()
        return outcomes


def describe_exit(code: int | None) -> str:
    """A process's exit status in words: "exited with code 1", "was killed by SIGKILL"."""
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"
