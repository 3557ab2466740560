"""The README's quick start, command by command, as a newcomer runs it: no Ollama on the machine.

The commands are read from the README itself, so the test follows the page: `make up` must fall back to the
offline embedder and index the samples, and the next command, `orca search`, must answer (the index says the
offline embedder built it, and search uses it whatever ORCA_EMBEDDER says). Ctrl-C then stops everything.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from tests.processes import ManagedProcess, closed_port_url, free_port, orca_env, wait_until

REPO = Path(__file__).parents[2]


def quick_start_commands() -> list[str]:
    """The shell commands of the README's "Quick start" section, in order, without their comments."""
    readme = REPO.joinpath("README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
            if command:
                commands.append(command)
    return commands


@pytest.mark.timeout(600)
def test_the_quick_start_works_in_order_without_ollama(tmp_path):
    commands = quick_start_commands()
    assert commands[0] == "make up" and any(c.startswith(".venv/bin/orca search samples") for c in commands), commands
    env = orca_env(tmp_path, OLLAMA_HOST=closed_port_url(), ORCA_WEBSERVER_PORT=str(free_port()),
                   ORCA_INTAKE_PORT=str(free_port()))  # fmt: skip
    del env["ORCA_EMBEDDER"]  # a newcomer sets nothing: Ollama is the default, and it is not there
    index = tmp_path / "warehouse" / "samples" / "embedding_index.parquet"
    with ManagedProcess(shlex.split(commands[0]), env=env, log_path=tmp_path / "up.log", cwd=REPO) as up:
        up.wait_for_output("offline embedder", timeout=300)
        up.wait_for_output("Press Ctrl-C to stop.", timeout=300)
        wait_until(index.is_file, timeout=240, message=f"the samples were never indexed:\n{up.output()[-4000:]}")
        for command in commands[1:]:
            result = subprocess.run(shlex.split(command), env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
            if command.startswith(".venv/bin/orca search"):
                assert "orca-hashing-v1 (hashing)" in result.stderr, result.stderr
                samples = {p.name for p in (REPO / "orca" / "samples").iterdir()}
                assert any(name in result.stdout for name in samples), result.stdout
        status = subprocess.run([".venv/bin/orca", "status", "--json"], env=env, cwd=REPO, capture_output=True,
                                text=True, timeout=120)  # fmt: skip
        document = json.loads(status.stdout)
        assert status.returncode == 0 and document["healthy"], status.stdout  # healthy on its fallback embedder
        assert document["embedder"]["name"] == "hashing" and "fell back" in document["embedder"]["detail"]
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole foreground group: make and orca
        up.wait(timeout=60)
        assert "All Orca processes stopped." in up.output()
    assert not (tmp_path / "up.json").exists()  # `orca up` removes its record when it stops
