"""`prepare_model_job` against the Ollama stand-in, executed in process on a temporary instance.

A missing model is pulled with streamed progress (logged per layer every 10 %, not per line) and is present
afterwards; a present one is left alone unless `force_pull`; an `{"error": ...}` line in the middle of a
200 stream fails the run with the server's message; a host that does not answer fails the run naming it;
the model's shape and load time end up in the ops' metadata. Also `orca up --pull`'s helper, which runs the
job only where the model is missing.
"""

from __future__ import annotations

import re

import dagster as dg
import pytest
from rich.console import Console

from orca.cli import build_parser
from orca.prepare import pull_before_up
from orca_assets.pull_progress import PullProgress, human_bytes
from orca_core.settings import OrcaSettings
from orca_resources.ollama import OllamaResource
from tests.op_job_helpers import failure, output_metadata, user_logs

MODEL = "nomic-embed-text"
LAYERS = (1_000_000, 20_000, 420)
PROGRESS = re.compile(r"^(?P<host>\S+): pulling (?P<digest>[0-9a-f]{12}): (?P<percent>\d+)% \(")


def resource(*hosts: str, **overrides) -> OllamaResource:
    return OllamaResource(host=",".join(hosts), **{"max_retries": 0, "backoff_initial": 0.01, **overrides})


def percentages(logs: list[str]) -> dict[str, list[int]]:
    """The percentages logged per layer (short digest), in order."""
    found: dict[str, list[int]] = {}
    for line in logs:
        if match := PROGRESS.match(line):
            found.setdefault(match["digest"], []).append(int(match["percent"]))
    return found


@pytest.fixture
def missing_model(ollama_standin):
    """The stand-in without the model, which it can pull in 20 progress lines per layer."""
    ollama_standin.remove_model(MODEL)
    ollama_standin.make_pullable(MODEL, layer_sizes=LAYERS)
    ollama_standin.pull_steps = 20
    ollama_standin.load_seconds = 0.2
    return ollama_standin


def test_pull_streams_progress_then_confirms_and_loads_the_model(missing_model, op_job):
    with dg.instance_for_test() as instance:
        result = op_job("prepare_model_job", ollama=resource(missing_model.url)).execute_in_process(instance=instance)
        logs = user_logs(instance, result.run_id)
    assert result.success
    assert missing_model.has_model(MODEL) and missing_model.stats.pulls == [f"{MODEL}:latest"]

    # 21 lines per layer arrived; each layer was logged at 0, 10, ..., 100 % and no more often.
    logged = percentages(logs)
    assert len(logged) == len(LAYERS)
    assert all(steps == list(range(0, 101, 10)) for steps in logged.values()), logged
    assert all(line.startswith(missing_model.url) for line in logs if PROGRESS.match(line))
    prefix = f"{missing_model.url}: "
    statuses = [line.removeprefix(prefix) for line in logs if line.startswith(prefix) and "%" not in line]
    assert statuses[:1] == ["pulling manifest"] and "verifying sha256 digest" in statuses and "success" in statuses

    hosts = output_metadata(result, "check_ollama_hosts")
    assert hosts == {"hosts": 1, missing_model.url: "0.12.6"}
    pulled = output_metadata(result, "pull_model")
    assert pulled["pulled_on"] == missing_model.url and pulled["bytes_pulled"] == sum(LAYERS)
    assert pulled["hosts"][missing_model.url]["progress_lines"] == 3 + len(LAYERS) * 21 + 1
    shape = output_metadata(result, "confirm_model_shape")
    assert (shape["embedding_length"], shape["context_length"], shape["architecture"]) == (64, 2048, "nomic-bert")
    loaded = output_metadata(result, "load_model")
    assert loaded["load_seconds"] >= 0.2 and loaded["keep_alive"] == "30m"
    assert loaded["hosts"][missing_model.url]["server_load_seconds"] == pytest.approx(0.2)
    # At least the stand-in's load time; no upper bound, which a busy machine could break.
    assert any(re.search(r"loaded in \d+\.\d+s \(server load 0\.20s\), kept for 30m", line) for line in logs)


def test_present_model_is_pulled_only_with_force_pull(ollama_standin, op_job):
    job = op_job("prepare_model_job", ollama=resource(ollama_standin.url))
    with dg.instance_for_test() as instance:
        skipped = job.execute_in_process(instance=instance)
        assert skipped.success and ollama_standin.stats.requests["/api/pull"] == 0
        assert any("already has nomic-embed-text" in line for line in user_logs(instance, skipped.run_id))
        assert output_metadata(skipped, "pull_model")["pulled_on"] == "none"

        forced = job.execute_in_process(
            instance=instance, run_config={"ops": {"pull_model": {"config": {"force_pull": True}}}}
        )
    assert forced.success and ollama_standin.stats.pulls == [f"{MODEL}:latest"]
    assert output_metadata(forced, "pull_model")["pulled_on"] == ollama_standin.url


def test_error_line_in_a_200_stream_fails_with_the_servers_message(missing_model, op_job):
    missing_model.fail_pull_after(8, "max retries exceeded: read tcp: connection reset by peer")
    job = op_job("prepare_model_job", ollama=resource(missing_model.url, max_retries=3))
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        logs = user_logs(instance, result.run_id)
    assert not result.success
    step, message = failure(result)
    assert step == "pull_model"
    assert "max retries exceeded: read tcp: connection reset by peer" in message and missing_model.url in message
    assert percentages(logs)  # the progress that came before the error was logged
    assert missing_model.stats.requests["/api/pull"] == 1  # the server's verdict is final, not retried
    assert not missing_model.has_model(MODEL)
    assert [e.step_key for e in result.all_events if e.is_step_start] == ["check_ollama_hosts", "pull_model"]


def test_unknown_model_fails_with_the_registry_message(ollama_standin, op_job):
    job = op_job("prepare_model_job", ollama=resource(ollama_standin.url, model="no-such-embed"))
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert failure(result) == (
        "pull_model",
        f"pulling no-such-embed on {ollama_standin.url} failed: {ollama_standin.url} reported an error during "
        "POST /api/pull: pull model manifest: file does not exist",
    )


def test_host_that_does_not_answer_fails_naming_it(ollama_standin, ollama_standin_factory, op_job):
    gone = ollama_standin_factory()
    gone.stop()  # a port where nothing listens any more
    job = op_job("prepare_model_job", ollama=resource(ollama_standin.url, gone.url))
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        logs = user_logs(instance, result.run_id)
    step, message = failure(result)
    assert step == "check_ollama_hosts"
    assert message.startswith(f"1 of 2 Ollama host(s) do not answer: {gone.url}. Start `ollama serve` there")
    assert f"Ollama 0.12.6 answers at {ollama_standin.url}" in logs
    assert ollama_standin.stats.requests["/api/pull"] == 0


def test_progress_is_throttled_by_time_as_well_as_by_steps():
    now = [0.0]
    logged: list[str] = []
    progress = PullProgress(logged.append, "h", every_percent=50, every_seconds=5.0, clock=lambda: now[0])
    for completed in range(0, 101, 4):  # a slow layer: 4 % every 2 s
        line = {"status": "pulling abcdef012345", "digest": "sha256:abcdef012345ff", "total": 100}
        progress({**line, "completed": completed})
        now[0] += 2.0
    shown = [int(re.search(r"(\d+)%", line)[1]) for line in logged]
    # first line, every 5 s (3 lines apart) and the 50 % step, and the end
    assert shown == [0, 12, 24, 36, 48, 52, 64, 76, 88, 100]
    assert progress.lines == 26 and progress.total_bytes == 100


def test_orca_up_pull_runs_the_job_only_where_the_model_is_missing(
    missing_model, ollama_standin_factory, tmp_path, monkeypatch
):
    ready = ollama_standin_factory()
    for name in ("ORCA_HOME", "DAGSTER_HOME", "OLLAMA_HOST", "ORCA_EMBED_MODEL", "ORCA_EMBEDDER"):
        monkeypatch.delenv(name, raising=False)  # restored after the test: pull_before_up exports them
    monkeypatch.setenv("ORCA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OLLAMA_HOST", f"{missing_model.url},{ready.url}")
    settings = OrcaSettings.from_env()
    console = Console(record=True, width=200)

    assert build_parser().parse_args(["up", "--pull"]).pull is True
    assert pull_before_up(settings, console) is None
    assert missing_model.stats.pulls == [f"{MODEL}:latest"] and ready.stats.requests["/api/pull"] == 0
    assert ready.stats.requests["/api/embed"] == 0  # nothing loaded where nothing was missing
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        (run,) = instance.get_runs(dg.RunsFilter(job_name="prepare_model_job"))
        assert run.status == dg.DagsterRunStatus.SUCCESS
    # Not a terminal: the byte bar is a few plain lines, the last at the model's whole size.
    size = human_bytes(sum(LAYERS))
    bar = [line for line in console.export_text(clear=False).splitlines() if re.match(rf"{missing_model.url}: .*B/", line)]
    assert 2 <= len(bar) <= 5 and bar[-1].startswith(f"{missing_model.url}: {size}/{size} (100%) in "), bar
    assert f"is ready on {missing_model.url}" in console.export_text()

    assert pull_before_up(settings, console) is None  # now present everywhere: nothing to do
    assert "already on" in console.export_text() and missing_model.stats.requests["/api/pull"] == 1
