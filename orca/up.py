"""`orca up`: the embedded default deployment — webserver, daemon and REST intake on one ORCA_HOME/DAGSTER_HOME.

Production shape on one machine: one Dagster code server (orca/code_server.py) that `dagster-webserver` and
exactly one `dagster-daemon run` both load the code from, sharing DAGSTER_HOME and dagster.yaml, and the REST
intake (`python -m orca_intake`) writing into the same inbox and intake queue that the daemon's sensors read.
All of them get the same environment (`OrcaSettings.child_environ()`, with the embedder actually chosen at
start), and the sample collection is seeded before they start.

The terminal stays calm: a banner, then a line per finished run (orca/run_lines.py); the children's output
goes to `$ORCA_HOME/logs/` (orca/child_output.py), and to the terminal too with `-v`.

An intake that would refuse to start (a non-loopback ORCA_INTAKE_HOST without ORCA_INTAKE_TOKENS or a JWT
setting) or a taken ORCA_CODE_SERVER_PORT is caught before anything starts: `orca up` prints why and exits 2.
"""

from __future__ import annotations

import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console

from orca.child_output import ChildOutput
from orca.code_server import (
    CodeLocation,
    CodeServerPortTaken,
    accepts_connections,
    choose_port,
    code_location,
    server_argv,
    write_workspace,
)
from orca.home import open_instance, prepare_home, project_file, register_collection, seed_samples
from orca.run_lines import RunFeed
from orca.supervisor import Child, ChildSpec, Supervisor
from orca.up_console import Terminal, banner, log_path, process_table, report_death
from orca.up_record import remove_record, write_record
from orca_core.layout import SAMPLE_COLLECTION
from orca_core.settings import OrcaSettings
from orca_resources.errors import EmbedderError
from orca_resources.ollama_client import OllamaClient, OllamaConfig
from orca_resources.ollama_models import model_digest

OLLAMA_PROBE_TIMEOUT_SECONDS = 2.0
READY_TIMEOUT_SECONDS = 180.0
USAGE_ERROR = 2


def _executable(name: str) -> str:
    """A console script of this environment (next to the running Python), else from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def location_args(module: str | None = None) -> list[str]:
    """How the children load the code: `module` when given (a project extending Orca's definitions), else the
    project's workspace.yaml when there is one, else Orca's module."""
    if module:
        return ["-m", module]
    workspace = project_file("workspace.yaml")
    return ["-w", str(workspace)] if workspace else ["-m", "orca.definitions"]


def local_url(host: str, port: int) -> str:
    """A URL on this machine for a server bound to `host`: a wildcard bind is reached on loopback."""
    host = host.strip().strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def intake_url(settings: OrcaSettings) -> str:
    return local_url(settings.intake_host, settings.intake_port)


def child_specs(
    settings: OrcaSettings, *, location: CodeLocation, code_port: int, workspace: Path, intake: bool = True
) -> list[ChildSpec]:
    """The processes `orca up` supervises, in start order (stopped in reverse: intake, daemon, webserver, code
    server). The webserver and the daemon load the code from the one code server, through `workspace`."""
    specs = [
        ChildSpec("code-server", server_argv(_executable("dagster"), location, code_port), ready_port=code_port),
        ChildSpec(
            "webserver",
            [_executable("dagster-webserver"), "-h", "127.0.0.1", "-p", str(settings.webserver_port),
             "-w", str(workspace)],
            url=local_url("127.0.0.1", settings.webserver_port),
            ready_path="/server_info",
        ),
        ChildSpec("daemon", [_executable("dagster-daemon"), "run", "-w", str(workspace)]),
    ]
    if intake:
        specs.append(
            ChildSpec(
                "intake",
                [sys.executable, "-m", "orca_intake", "--host", settings.intake_host, "--port", str(settings.intake_port)],
                url=intake_url(settings),
                ready_path="/health/live",
            )
        )
    return specs


def intake_refusal(settings: OrcaSettings) -> str | None:
    """Why the intake would refuse to start with this environment (unsafe bind, invalid setting), else None."""
    from orca_intake.auth import check_bind  # FastAPI and friends only when `orca up` runs

    try:
        check_bind(settings.intake_host, settings)
    except ValueError as error:  # UnsafeBind
        return str(error)
    return None


def probe_ollama(settings: OrcaSettings) -> tuple[list[str], list[str]]:
    """Split OLLAMA_HOST's servers into those that answer GET /api/version and those that do not."""
    answering, silent = [], []
    for host in settings.ollama_hosts:
        try:
            response = httpx.get(f"{host}/api/version", timeout=OLLAMA_PROBE_TIMEOUT_SECONDS)
            response.raise_for_status()
            answering.append(host)
        except (httpx.HTTPError, ValueError):
            silent.append(host)
    return answering, silent


def model_is_pulled(host: str, model: str) -> bool | None:
    """Whether `host` lists `model` in /api/tags (None when it cannot tell)."""
    config = OllamaConfig(host=host, model=model).probe(OLLAMA_PROBE_TIMEOUT_SECONDS)
    try:
        with OllamaClient(config) as probe:
            return model_digest(probe, probe.http.hosts[0]) is not None
    except (EmbedderError, ValueError):  # no answer, a wrong one, or no usable host URL
        return None


def choose_embedder(settings: OrcaSettings, console: Console) -> OrcaSettings:
    """Keep Ollama when a server answers; otherwise say so plainly and fall back to the offline embedder."""
    if settings.embedder == "hashing":
        console.print("Embedder: offline hashing embedder (ORCA_EMBEDDER=hashing).")
        return settings
    answering, silent = probe_ollama(settings)
    for host in silent:
        console.print(f"No Ollama answered at {host} (GET /api/version).", markup=False)
    if not answering:
        console.print(
            "Orca runs with the offline embedder for now (ORCA_EMBEDDER=hashing): fine to try things out, "
            "but its vectors only count shared words.\n"
            f"To switch to Ollama: start it (`ollama serve`), run `ollama pull {settings.embed_model}`, "
            "then restart `orca up` (set OLLAMA_HOST if it is not on localhost:11434).",
            markup=False,
        )
        return settings.model_copy(update={"embedder": "hashing"})
    for host in answering:
        pulled = model_is_pulled(host, settings.embed_model)
        note = "" if pulled is not False else f"; model missing: run `ollama pull {settings.embed_model}`"
        console.print(f"Embedder: Ollama at {host}, model {settings.embed_model}{note}", markup=False)
    return settings


def serves(spec: ChildSpec) -> bool:
    """Whether the child answers on its ready URL or port (True for one with neither)."""
    if spec.ready_port is not None:
        return accepts_connections(spec.ready_port)
    if spec.ready_path is None:
        return True
    try:
        return httpx.get(f"{spec.url}{spec.ready_path}", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_ready(supervisor: Supervisor, spec: ChildSpec, timeout: float = READY_TIMEOUT_SECONDS) -> bool:
    """Poll the child until it serves; False when a child died, a stop was requested, or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not supervisor.stop_requested.is_set():
        if supervisor.dead_child() is not None:
            return False
        if serves(spec):
            return True
        supervisor.stop_requested.wait(0.5)
    return False


def start_children(supervisor: Supervisor, specs: list[ChildSpec], terminal: Terminal) -> Child | None:
    """The code server first (the others load from it), then the rest; the first child that did not come to
    serve in time (None once all of them serve, or when one died or a stop was requested: `wait` tells)."""
    first, rest = specs[0], specs[1:]
    child = supervisor.start(first)
    if not wait_until_ready(supervisor, first):
        return child
    for spec in rest:
        supervisor.start(spec)
    terminal.table(process_table(supervisor.children))
    for child in supervisor.children[1:]:
        if not child.spec.ready_path:
            continue
        if not wait_until_ready(supervisor, child.spec):
            return child
        terminal.say(f"{child.spec.name} ready at {child.spec.url}")
    return None


def up(
    settings: OrcaSettings, console: Console, *, intake: bool = True, module: str | None = None, verbose: bool = False
) -> int:
    """Run the deployment until Ctrl-C/SIGTERM or until a child dies; the exit code.

    0: stopped on request and every child stopped cleanly (0, or ended by our SIGTERM); 1: a child died on its
    own, did not serve in time, or did not stop cleanly; 2: the intake would refuse its settings,
    ORCA_CODE_SERVER_PORT is taken, or the workspace cannot be served (checked before anything starts).
    """
    started = datetime.now(UTC)
    errors = Console(stderr=True, soft_wrap=True)
    if intake and (refusal := intake_refusal(settings)):
        errors.print(f"orca up: error: {refusal}", markup=False, highlight=False)
        return USAGE_ERROR
    try:
        location = code_location(module, project_file("workspace.yaml"))
        code_port = choose_port(settings)
    except (CodeServerPortTaken, ValueError) as error:
        errors.print(f"orca up: error: {error}", markup=False, highlight=False)
        return USAGE_ERROR
    settings = choose_embedder(settings, console)
    prepare_home(settings)
    seeded = seed_samples(settings)
    # Creating the SQLite storage here, before two children race to create it, also registers the samples.
    instance = open_instance(settings)
    register_collection(instance, SAMPLE_COLLECTION)
    if seeded:
        console.print(f"Seeded the sample collection into {seeded}", markup=False)

    terminal = Terminal(console)
    supervisor = Supervisor(
        settings.child_environ(), log=terminal.say,
        output=lambda spec: ChildOutput(log_path(settings, spec.name), echo=terminal.echo if verbose else None),
    )
    supervisor.install_signal_handlers()
    workspace = write_workspace(settings, location, code_port)
    specs = child_specs(settings, location=location, code_port=code_port, workspace=workspace, intake=intake)
    feed = RunFeed(instance, settings, terminal.markup, since=started)
    slow = start_children(supervisor, specs, terminal)
    failed_start = slow is not None and not supervisor.stop_requested.is_set() and supervisor.dead_child() is None
    if slow is None:
        banner(terminal, settings, webserver=local_url("127.0.0.1", settings.webserver_port),
               intake=intake_url(settings) if intake else None, inbox=inbox_url(settings), verbose=verbose)
        write_record(settings, code_port=code_port)  # for `orca status`: the embedder and port chosen here
        feed.start()
    elif failed_start:
        log = f" (see {slow.output.path})" if slow.output is not None else ""
        terminal.say(f"error: {slow.spec.name} did not serve within {READY_TIMEOUT_SECONDS:.0f}s{log}")

    dead = None if failed_start else supervisor.wait()
    feed.stop()
    remove_record(settings)
    if dead is not None:
        report_death(terminal, dead, f"code {dead.process.returncode}")
    elif not failed_start:
        terminal.say(f"Received {supervisor.stop_reason or 'stop'}: shutting down.")
    outcomes = supervisor.stop()
    unclean = []
    for child, how in outcomes:
        if child is not dead:
            terminal.say(f"{child.spec.name} (pid {child.pid}) {how}")
            if how != "stopped":
                unclean.append(child.spec.name)
    terminal.say("All Orca processes stopped.")
    if unclean:
        terminal.say(f"error: not a clean stop: {', '.join(unclean)} (see above)")
    return 1 if dead is not None or unclean or failed_start else 0


def inbox_url(settings: OrcaSettings) -> str:
    """Where documents are dropped: the local inbox folder, or its prefix on the object store."""
    storage = settings.storage
    return f"{storage.url.rstrip('/')}/inbox" if storage.remote else str(settings.layout.inbox_root)
