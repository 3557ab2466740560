"""`orca up --pull`: when Ollama answers but lacks the embedding model, run `prepare_model_job` first.

Pulling is never implicit (models weigh gigabytes): only `--pull` does it; without it `orca up` just says
the model is missing and how to get it. The run executes in this process, on the instance under
DAGSTER_HOME, before the webserver and daemon start: it needs no daemon, nothing competes with it for the
SQLite storage, its progress lines print to the terminal as they arrive, and the run is recorded like any
other, so it shows in the webserver afterwards. It pulls and loads only on the hosts that lack the model.
"""

from __future__ import annotations

from rich.console import Console

from orca_core.settings import OrcaSettings
from orca_resources.embedders import ollama_resource
from orca_resources.errors import EmbedderError
from orca_resources.ollama_client import OllamaClient
from orca_resources.ollama_models import model_digest

JOB_NAME = "prepare_model_job"
PROBE_TIMEOUT_SECONDS = 2.0


def hosts_missing_model(settings: OrcaSettings) -> tuple[list[str], list[str]]:
    """(hosts that answer, those of them that lack ORCA_EMBED_MODEL); silent hosts are in neither."""
    config = ollama_resource(settings).ollama_config().probe(PROBE_TIMEOUT_SECONDS)
    answering, missing = [], []
    with OllamaClient(config) as probe:
        for host in probe.http.hosts:
            try:
                present = model_digest(probe, host) is not None
            except EmbedderError:
                continue  # `orca up` itself reports the hosts that do not answer
            answering.append(host)
            if not present:
                missing.append(host)
    return answering, missing


def pull_before_up(settings: OrcaSettings, console: Console) -> int | None:
    """Pull where needed; None when `orca up` should go on, else the exit code to stop with."""
    say = lambda text: console.print(text, markup=False, highlight=False)  # noqa: E731
    if settings.embedder == "hashing":
        say("--pull: nothing to pull, the offline hashing embedder (ORCA_EMBEDDER=hashing) needs no model.")
        return None
    answering, missing = hosts_missing_model(settings)
    if not answering:
        say(f"--pull: no Ollama answers at {settings.ollama_host}; nothing pulled.")
        return None
    if not missing:
        say(f"--pull: {settings.embed_model} is already on {', '.join(answering)}; nothing to pull.")
        return None

    from orca.definitions import build_definitions
    from orca.home import open_instance, prepare_home
    from orca.materialize import failure_message

    prepare_home(settings)

    say(f"--pull: pulling {settings.embed_model} onto {', '.join(missing)} with {JOB_NAME} (this may take a while)")
    job = build_definitions(settings).resolve_job_def(JOB_NAME)
    run_config = {
        # Complete resource config (Dagster replaces it whole): only the hosts that lack the model.
        "resources": {"ollama": {"config": {"host": ",".join(missing), "model": settings.embed_model}}},
        # The progress lines are INFO; Dagster's DEBUG step events would bury them.
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
    }
    result = job.execute_in_process(instance=open_instance(settings), run_config=run_config, raise_on_error=False)
    if not result.success:
        say(f"error: {JOB_NAME} run {result.run_id} failed:\n{failure_message(result)}")
        say("Fix that and start `orca up --pull` again, or start without --pull (embedding runs need the model).")
        return 1
    say(f"--pull: {settings.embed_model} is ready on {', '.join(missing)} (run {result.run_id}).")
    return None
