"""`orca pull` and `orca up --pull`: run `prepare_model_job` in this process, with a byte progress bar per host.

Pulling is never implicit (models weigh gigabytes): only `orca pull` and `orca up --pull` do it; without
them `orca up` just says the model is missing and how to get it. The run executes in this process, on the
instance under DAGSTER_HOME (for `up --pull`, before the webserver and daemon start): it needs no daemon,
nothing competes with it for the SQLite storage, and the run is recorded like any other, so it shows in the
webserver afterwards. A watcher thread follows the run's log: `pull_model` logs each layer's bytes in a fixed
shape (orca_assets/pull_progress.py), which becomes one bar of bytes per host. `up --pull` pulls and loads
only on the hosts that lack the model; `orca pull` prepares every host, as the intake's prepare_model job does.
"""

from __future__ import annotations

from rich.console import Console

from orca.progress_display import BYTES, STEPS, Board
from orca_assets.pull_progress import human_bytes, layer_progress
from orca_core.settings import OrcaSettings
from orca_resources.embedders import ollama_resource
from orca_resources.errors import EmbedderError
from orca_resources.ollama_client import OllamaClient
from orca_resources.ollama_models import model_digest

JOB_NAME = "prepare_model_job"
PROBE_TIMEOUT_SECONDS = 2.0
PULL_STEP = "pull_model"
# Finer than the job's defaults (10 %, 5 s), for a bar that moves; each line is one event in the instance.
BAR_LOG_EVERY = {"log_every_percent": 2, "log_every_seconds": 1.0}


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


class PullBars:
    """An `on_log` for prepare_model_job: one bar of bytes per host, summed over the layers it pulls."""

    def __init__(self, board: Board):
        self.board = board
        self.bars: dict[str, object] = {}
        self.layers: dict[str, dict[str, tuple[int, int]]] = {}  # host -> digest -> (completed, total)

    def __call__(self, step: str, message: str, at: float) -> bool:
        host, _, rest = message.partition(": ")
        if step != PULL_STEP or "://" not in host or not rest:
            return False
        if host not in self.bars:
            self.bars[host] = self.board.add(host, unit=BYTES, at=at, growing=True)
        layers = self.layers.setdefault(host, {})
        if (layer := layer_progress(message)) is not None:
            layers[layer.digest] = (layer.completed, layer.total)
            rest = f"pulling {layer.digest}"
        if layers:
            self.board.update(self.bars[host], completed=sum(done for done, _ in layers.values()),
                              total=sum(total for _, total in layers.values()), at=at)
        self.board.describe(self.bars[host], rest)  # or a status: pulling manifest, verifying, success
        if rest == "success":  # Ollama's last line: every layer was announced and fetched
            self.board.complete(self.bars[host])
        return True


def run_prepare_model(settings: OrcaSettings, console: Console, *, hosts: list[str] | None = None,
                      force: bool = False, verbose: bool = False):
    """Run prepare_model_job (on `hosts`, default all of OLLAMA_HOST), drawing its progress; its result."""
    import uuid

    from orca.definitions import build_definitions
    from orca.home import open_instance, prepare_home
    from orca.materialize import execute_watched
    from orca.run_watcher import RunWatcher

    prepare_home(settings)
    job = build_definitions(settings).resolve_job_def(JOB_NAME)
    run_config: dict = {"ops": {PULL_STEP: {"config": {"force_pull": force, **BAR_LOG_EVERY}}}}
    if hosts is not None:  # complete resource config (Dagster replaces it whole): only these hosts
        run_config["resources"] = {"ollama": {"config": {"host": ",".join(hosts), "model": settings.embed_model}}}
    if not verbose:  # the bars say it; `-v` brings Dagster's lines back
        run_config["loggers"] = {"console": {"config": {"log_level": "CRITICAL"}}}
    instance, run_id = open_instance(settings), str(uuid.uuid4())
    with Board(console, live=False if verbose else None) as board:
        steps = board.add(settings.embed_model, unit=STEPS, total=len(job.graph.nodes), description="starting")

        def step_done(line: str) -> None:
            board.advance(steps)
            board.print(line)

        watcher = RunWatcher(instance, run_id, lambda text: board.describe(steps, text), step_done,
                             on_log=PullBars(board))
        return execute_watched(job, instance, None, run_config, run_id, watcher)


def output_metadata(result, step: str) -> dict:
    """The plain metadata values of `step`'s output; empty when it produced none."""
    for event in result.all_events:
        if event.is_successful_output and event.step_key == step:
            return {key: getattr(value, "value", value) for key, value in event.step_output_data.metadata.items()}
    return {}


def host_lines(result, model: str) -> list[str]:
    """What the run did on each host: pulled (how much, how long) or found the model there, and its load time."""
    pulled = output_metadata(result, PULL_STEP).get("hosts") or {}
    loaded = output_metadata(result, "load_model").get("hosts") or {}
    lines = []
    for host, entry in pulled.items():
        if entry.get("pulled"):
            did = f"pulled {model} ({human_bytes(entry.get('bytes') or 0)} in {entry.get('seconds', 0):.1f}s)"
        else:
            did = f"{model} was already there (digest {(entry.get('digest') or '')[:12]})"
        if host in loaded:
            did += f", loaded in {loaded[host]['seconds']:.2f}s"
        lines.append(f"{host}: {did}")
    return lines


def pull_before_up(settings: OrcaSettings, console: Console, *, verbose: bool = False) -> int | None:
    """Pull where needed; None when `orca up` should go on, else the exit code to stop with."""
    from orca.materialize import failure_message

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

    say(f"--pull: pulling {settings.embed_model} onto {', '.join(missing)} with {JOB_NAME} (this may take a while)")
    result = run_prepare_model(settings, console, hosts=missing, verbose=verbose)
    if not result.success:
        say(f"error: {JOB_NAME} run {result.run_id} failed:\n{failure_message(result)}")
        say("Fix that and start `orca up --pull` again, or start without --pull (embedding runs need the model).")
        return 1
    for line in host_lines(result, settings.embed_model):
        say(f"--pull: {line}")
    say(f"--pull: {settings.embed_model} is ready on {', '.join(missing)} (run {result.run_id}).")
    return None
