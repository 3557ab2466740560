"""`orca materialize A B ...` and `--all`: several collections in one command, run as real processes.

Every collection must get its index and its own recorded run on the instance under DAGSTER_HOME; a failing
collection must make the command exit 1 and name it while the others still publish; `--all` must take every
inbox folder; a collection with nothing changed since its last successful run must be left out; bad or unknown names must be refused before any run starts; Ctrl-C must stop the workers and
leave no run recorded as still in progress. Embeddings come from the Ollama stand-in on a real port.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from orca_core.tags import PID_TAG
from tests.processes import ManagedProcess, console_script, orca_env, pid_alive, run_cli, wait_until

TOPICS = {
    "tides": ["The moon pulls the ocean into tides.", "Spring tides follow the full moon.", "Neap tides are weak."],
    "bread": ["Knead the dough and let it rise.", "Sourdough needs a starter.", "Bake the loaf in a hot oven."],
    "stars": ["A nebula is a cloud of gas.", "Stars burn hydrogen into helium.", "A comet has a tail of ice."],
}


def write_collection(home: Path, name: str, texts: list[str]) -> None:
    inbox = home / "inbox" / name
    inbox.mkdir(parents=True, exist_ok=True)
    for number, text in enumerate(texts):
        (inbox / f"note-{number}.md").write_text(f"# {name} {number}\n\n{text}\n", encoding="utf-8")


def index_docs(home: Path, name: str) -> set[str]:
    return set(pq.read_table(home / "warehouse" / name / "embedding_index.parquet")["doc_id"].to_pylist())


def recorded_runs(home: Path) -> dict[str, list[dg.DagsterRun]]:
    """The embed_collection_job runs on the instance, by collection."""
    runs: dict[str, list[dg.DagsterRun]] = {}
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        for run in instance.get_runs(dg.RunsFilter(job_name="embed_collection_job")):
            runs.setdefault(run.tags["dagster/partition"], []).append(run)
    return runs


@pytest.mark.timeout(300)
def test_two_collections_in_one_command_publish_two_indexes_and_record_two_runs(tmp_path, ollama_standin):
    for name in ("tides", "bread"):
        write_collection(tmp_path, name, TOPICS[name])
    env = orca_env(tmp_path, ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama_standin.url)
    result = run_cli(["materialize", "tides", "bread"], env=env)
    assert result.returncode == 0, result.stdout + result.stderr

    runs = recorded_runs(tmp_path)
    assert sorted(runs) == ["bread", "tides"]
    for name in ("tides", "bread"):
        assert [run.status for run in runs[name]] == [dg.DagsterRunStatus.SUCCESS]
        assert runs[name][0].run_id in result.stdout  # its summary table names the run
        assert index_docs(tmp_path, name) == {f"note-{n}.md" for n in range(3)}
        assert f"Collection {name}" in result.stdout
    # Both collections' texts reached the server, once each.
    embedded = " ".join(ollama_standin.stats.inputs)
    assert all(text in embedded for texts in (TOPICS["tides"], TOPICS["bread"]) for text in texts)
    assert ollama_standin.stats.inputs_embedded == 6
    assert "2 collections are up to date" in result.stdout
    # Piped, each collection's bar of inputs is a few plain lines ending at its total (tests/orca/test_progress.py
    # watches the bars draw in a terminal).
    for name in ("tides", "bread"):
        assert re.search(rf"^{name}: 3/3 inputs in \d+:\d\d:\d\d", result.stderr, re.MULTILINE), result.stderr
    assert "\x1b" not in result.stderr

    # Again, with only tides changed: bread is left out (no run), tides runs and picks up its new note.
    (tmp_path / "inbox" / "tides" / "note-3.md").write_text("# tides 3\n\nKing tides are the highest.\n")
    again = run_cli(["materialize", "tides", "bread"], env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Up to date, not run: bread " in again.stdout
    runs = recorded_runs(tmp_path)
    assert [len(runs["tides"]), len(runs["bread"])] == [2, 1]
    assert index_docs(tmp_path, "tides") == {f"note-{n}.md" for n in range(4)}


@pytest.mark.timeout(300)
def test_a_failing_collection_fails_the_command_and_the_others_still_publish(tmp_path, ollama_standin):
    for name in ("tides", "bread", "stars"):
        write_collection(tmp_path, name, TOPICS[name])
    # A file where bread's warehouse folder belongs: its run fails writing its first table.
    (tmp_path / "warehouse").mkdir()
    (tmp_path / "warehouse" / "bread").write_text("in the way")
    env = orca_env(tmp_path, ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama_standin.url)
    result = run_cli(["materialize", "tides", "bread", "stars", "--parallel", "2"], env=env)

    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"1 of 3 collections failed: bread$", result.stderr, re.MULTILINE), result.stderr
    assert "File exists" in result.stderr
    assert "Traceback" not in result.stderr
    runs = recorded_runs(tmp_path)
    assert [run.status for run in runs["bread"]] == [dg.DagsterRunStatus.FAILURE]
    for name in ("tides", "stars"):
        assert [run.status for run in runs[name]] == [dg.DagsterRunStatus.SUCCESS]
        assert index_docs(tmp_path, name) == {f"note-{n}.md" for n in range(3)}


@pytest.mark.timeout(300)
def test_all_takes_every_inbox_folder(tmp_path):
    for name, texts in TOPICS.items():
        write_collection(tmp_path, name, texts)
    (tmp_path / "inbox" / ".staging").mkdir()  # hidden: an upload in progress, not a collection
    (tmp_path / "inbox" / "Not Valid").mkdir()
    result = run_cli(["materialize", "--all"], env=orca_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipping inbox folder 'Not Valid'" in result.stderr
    runs = recorded_runs(tmp_path)
    assert sorted(runs) == sorted(TOPICS)
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for group in runs.values() for run in group)
    for name in TOPICS:
        assert index_docs(tmp_path, name) == {f"note-{n}.md" for n in range(3)}


@pytest.mark.timeout(120)
def test_all_without_any_inbox_folder_says_where_documents_go(tmp_path):
    result = run_cli(["materialize", "--all"], env=orca_env(tmp_path))
    assert result.returncode == 1
    assert str(tmp_path / "inbox") in result.stderr.replace("\n", "")


@pytest.mark.timeout(120)
def test_an_unknown_collection_is_refused_before_any_run_starts(tmp_path):
    write_collection(tmp_path, "tides", TOPICS["tides"])
    result = run_cli(["materialize", "tides", "nowhere", "elsewhere"], env=orca_env(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    text = result.stderr.replace("\n", "")
    assert str(tmp_path / "inbox" / "nowhere") in text and str(tmp_path / "inbox" / "elsewhere") in text
    assert "nothing was run" in text
    assert not (tmp_path / "warehouse").exists()
    assert recorded_runs(tmp_path) == {}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "args",
    [["materialize", "tides", "Bad/Name"], ["materialize"], ["materialize", "--all", "tides"],
     ["materialize", "tides", "bread", "--parallel", "0"]],
)
def test_bad_usage_is_refused_before_orca_home_is_touched(tmp_path, args):
    write_collection(tmp_path, "tides", TOPICS["tides"])
    result = run_cli(args, env=orca_env(tmp_path))
    assert result.returncode == 2
    assert re.search(r"^orca: error: ", result.stderr, re.MULTILINE), result.stderr
    assert not (tmp_path / "dagster").exists()


@pytest.mark.timeout(300)
def test_ctrl_c_stops_the_workers_and_ends_their_runs(tmp_path, ollama_standin):
    ollama_standin.cost_fixed_s = 0.1  # 3 x 120 inputs, 12 s each, so Ctrl-C surely lands mid-run
    for name in ("tides", "bread", "stars"):
        write_collection(tmp_path, name, [f"{text} Variation {n}." for n in range(40) for text in TOPICS[name]])
    env = orca_env(tmp_path, ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama_standin.url)
    command = [console_script("orca"), "materialize", "tides", "bread", "stars"]
    with ManagedProcess(command, env=env, log_path=tmp_path / "orca.log") as orca:
        orca.wait_for_output("Materializing 3 collections", timeout=120)  # the instance exists from here on

        def two_runs_embedding():
            runs = [run for group in recorded_runs(tmp_path).values() for run in group]
            return runs if len(runs) == 2 and ollama_standin.stats.embed_requests >= 2 else None

        started = wait_until(two_runs_embedding, timeout=120, message="two runs never started embedding")
        orca.signal(signal.SIGINT)
        assert orca.wait(timeout=90) == 130, orca.output()
        output = orca.output()
    assert re.search(r"interrupted: stopped (tides|bread), (tides|bread), stars", output), output
    workers = [int(run.tags[PID_TAG]) for run in started]
    assert not any(pid_alive(pid) for pid in workers), "a worker outlived the command"
    runs = [run for group in recorded_runs(tmp_path).values() for run in group]
    assert sorted(run.tags["dagster/partition"] for run in runs) == ["bread", "tides"]  # stars never started
    assert all(run.status == dg.DagsterRunStatus.FAILURE for run in runs), [run.status for run in runs]
