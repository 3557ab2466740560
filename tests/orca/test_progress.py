"""Progress on the command line: the inputs bar of `orca materialize`, the byte bar of a pull, and `orca pull`.

The bars are checked where they draw: the CLI runs under a pseudo-terminal, so rich finds a real terminal
(no forcing) and redraws in place; its frames are read back and must count inputs (or bytes) up to the total.
Piped output must carry no redraws, only a few plain lines. The embeddings and the pull come from the Ollama
stand-in on a real port.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from orca.progress_display import INPUTS, Board
from orca_assets.pull_progress import layer_line, layer_progress
from tests.processes import console_script, orca_env, run_cli

COLLECTION = "notes"
DOCUMENTS = 100  # one chunk each: 4 batches of the Ollama client's 32
MODEL = "nomic-embed-text"
LAYERS = (3_000_000, 20_000, 420)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def write_notes(home: Path, count: int = DOCUMENTS) -> None:
    inbox = home / "inbox" / COLLECTION
    inbox.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        (inbox / f"note-{number:03d}.txt").write_text(f"Note {number} is about the number {number * 7919}.\n")


def run_in_terminal(args: list[str], env: dict[str, str], timeout: float = 180) -> tuple[int, list[str]]:
    """Run `orca ARGS` with a pseudo-terminal as its stdin, stdout and stderr; (exit code, the screen's lines)."""
    main, child = pty.openpty()
    process = subprocess.Popen([console_script("orca"), *args], env={**env, "TERM": "xterm-256color", "COLUMNS": "160"},
                               stdin=child, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)  # until the child closes the terminal (EIO on Linux)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    code = process.wait(timeout=timeout)
    text = ANSI.sub("", b"".join(chunks).decode(errors="replace"))
    return code, [line for line in re.split(r"[\r\n]+", text) if line.strip()]


@pytest.fixture
def slow_standin(ollama_standin):
    """A stand-in where each embed request takes a moment, so a run's batches span several progress lines."""
    ollama_standin.cost_fixed_s = 0.4
    return ollama_standin


@pytest.mark.timeout(300)
def test_materialize_in_a_terminal_draws_inputs_up_to_the_total(tmp_path, slow_standin):
    write_notes(tmp_path)
    env = orca_env(tmp_path, ORCA_EMBEDDER="ollama", OLLAMA_HOST=slow_standin.url)
    code, lines = run_in_terminal(["materialize", COLLECTION], env)
    assert code == 0, "\n".join(lines)

    frames = [line for line in lines if re.search(rf"\d+/{DOCUMENTS} inputs", line)]
    counts = [int(re.search(rf"(\d+)/{DOCUMENTS} inputs", line)[1]) for line in frames]
    assert counts and counts == sorted(counts) and counts[-1] == DOCUMENTS, frames
    assert len(set(counts)) >= 2, frames  # the bar moved while the run embedded, not only at its end
    assert all("━" in line for line in frames)  # drawn as a bar
    assert any(re.search(r"inputs/s", line) for line in frames), frames
    assert any(f"{DOCUMENTS} inputs sent" in line for line in lines)  # the summary follows the bars


@pytest.mark.timeout(300)
def test_materialize_piped_prints_a_few_plain_lines_and_says_when_nothing_needs_embedding(tmp_path, slow_standin):
    write_notes(tmp_path)
    env = orca_env(tmp_path, ORCA_EMBEDDER="ollama", OLLAMA_HOST=slow_standin.url)
    first = run_cli(["materialize", COLLECTION], env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "\r" not in first.stderr and "\x1b" not in first.stderr  # no redraws in a log
    progress = [line for line in first.stderr.splitlines() if line.startswith("embedding: ")]
    assert progress[0] == f"embedding: 0/{DOCUMENTS} inputs", first.stderr
    assert progress[-1].startswith(f"embedding: {DOCUMENTS}/{DOCUMENTS} inputs in "), first.stderr
    assert len(progress) <= 5, first.stderr

    again = run_cli(["materialize", COLLECTION, "--rerun"], env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"nothing to embed: all {DOCUMENTS} distinct chunks are already embedded" in again.stderr
    assert "embedding: " not in again.stderr


def test_plain_lines_stay_few_however_often_a_bar_moves():
    console = Console(record=True, width=120)
    with Board(console) as board:
        task = board.add("embedding", unit=INPUTS, total=10_000, at=0.0)
        for done in range(1, 10_001):
            board.update(task, completed=done, total=10_000, at=done / 1000)
    lines = console.export_text().splitlines()
    assert lines[0] == "embedding: 0/10,000 inputs" and len(lines) <= 5, lines
    assert lines[-1] == "embedding: 10,000/10,000 inputs in 0:00:10 (1,000.0 inputs/s)"


def test_a_layer_line_reads_back_exactly():
    line = layer_line("http://gpu-1:11434", "pulling 970aa74c0a90", 123_456_789, 274_290_656)
    assert line.startswith("http://gpu-1:11434: pulling 970aa74c0a90: 45% (117.7 MiB of 261.6 MiB")
    assert tuple(layer_progress(line)) == ("http://gpu-1:11434", "970aa74c0a90", 123_456_789, 274_290_656)
    assert layer_progress("http://gpu-1:11434: pulling manifest") is None


@pytest.fixture
def missing_model(ollama_standin):
    """The stand-in without the model; it pulls it in three layers, 20 progress lines each, a little slowly."""
    ollama_standin.remove_model(MODEL)
    ollama_standin.make_pullable(MODEL, layer_sizes=LAYERS)
    ollama_standin.pull_steps, ollama_standin.pull_delay = 20, 0.02
    return ollama_standin


@pytest.mark.timeout(300)
def test_pull_in_a_terminal_draws_bytes_up_to_the_total_then_a_second_pull_finds_the_model(tmp_path, missing_model):
    env = orca_env(tmp_path, ORCA_EMBEDDER="ollama", OLLAMA_HOST=missing_model.url)
    code, lines = run_in_terminal(["pull"], env)
    assert code == 0, "\n".join(lines)
    assert missing_model.has_model(MODEL) and missing_model.stats.pulls == [f"{MODEL}:latest"]

    frames = [line for line in lines if missing_model.url in line and "━" in line and "%)" in line]
    percents = [int(re.search(r"\((\d+)%\)", line)[1]) for line in frames]
    assert percents and percents[-1] == 100 and len(set(percents)) >= 2, frames
    assert any(f"{missing_model.url}: pulled {MODEL} (2.9 MiB in " in line for line in lines), lines

    again = run_cli(["pull"], env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{missing_model.url}: {MODEL} was already there" in again.stdout
    assert missing_model.stats.requests["/api/pull"] == 1
    assert "\x1b" not in again.stderr


@pytest.mark.timeout(300)
def test_pull_piped_ends_with_the_whole_size_and_force_pulls_again(tmp_path, missing_model):
    env = orca_env(tmp_path, ORCA_EMBEDDER="ollama", OLLAMA_HOST=missing_model.url)
    result = run_cli(["pull"], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    bars = [line for line in result.stderr.splitlines() if line.startswith(f"{missing_model.url}: ")]
    assert len(bars) <= 5 and bars[-1].startswith(f"{missing_model.url}: 2.9 MiB/2.9 MiB (100%) in "), result.stderr

    forced = run_cli(["pull", "--force"], env=env)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert missing_model.stats.requests["/api/pull"] == 2 and f"pulled {MODEL}" in forced.stdout


@pytest.mark.timeout(300)
def test_pull_without_an_answering_host_exits_1_naming_it(tmp_path):
    env = orca_env(tmp_path, ORCA_EMBEDDER="ollama")  # OLLAMA_HOST: a port where nothing listens
    result = run_cli(["pull"], env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"do not answer: {env['OLLAMA_HOST']}" in result.stderr
    assert "Traceback" not in result.stderr


def test_pull_with_the_offline_embedder_has_nothing_to_do(tmp_path):
    result = run_cli(["pull"], env=orca_env(tmp_path))  # ORCA_EMBEDDER=hashing
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Nothing to pull" in result.stdout
    assert not (tmp_path / "dagster").exists()
