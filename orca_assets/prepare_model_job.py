"""`prepare_model_job`: make the configured embedding model ready on every Ollama host before it is needed.

Four ops, each on every host of OLLAMA_HOST, each logging what it found and returning it as output metadata:

1. `check_ollama_hosts`: every host answers `GET /api/version` (its version is recorded), or the run fails
   naming the hosts that do not.
2. `pull_model`: `POST /api/pull` with `"stream": true` where the model is missing (or everywhere with
   `force_pull`), logging the progress lines as they arrive; an `{"error": ...}` line fails the run with
   the server's message although the HTTP status was 200.
3. `confirm_model_shape`: `POST /api/show` gives an embedding length and a context length, the same on
   every host, and the hosts serve the same build (vectors of two builds must not mix in one index).
4. `load_model`: an embed call without input and with `keep_alive` loads the model; its time is recorded.

The job uses its own resource key, `ollama`, wired to OLLAMA_HOST and ORCA_EMBED_MODEL even when the
embedder is the offline one, so the model can be prepared before switching ORCA_EMBEDDER to `ollama`.
"""

# No `from __future__ import annotations`: Dagster reads the ops' context annotations at definition time.
import time

import dagster as dg
from pydantic import Field

from orca_assets.pull_progress import PullProgress, human_bytes
from orca_core.tags import KIND_TAG
from orca_resources.errors import EmbedderError, StreamError
from orca_resources.ollama import OllamaResource
from orca_resources.ollama_models import load, model_digest, model_shape, pull


class PullConfig(dg.Config):
    """How `pull_model` pulls."""

    force_pull: bool = Field(False, description="Pull even where the model is present (fetches a newer build).")
    insecure: bool = Field(False, description="Allow a registry without TLS, as `ollama pull --insecure`.")
    log_every_percent: int = Field(10, ge=1, le=100, description="Log a layer's progress at every N percent.")
    log_every_seconds: float = Field(5.0, gt=0, description="... and at least this often while it moves.")


class LoadConfig(dg.Config):
    """How `load_model` loads."""

    keep_alive: str = Field("", description="How long Ollama keeps the model loaded (e.g. 30m, 24h, -1 for "
                            "ever); empty: the resource's keep_alive.")


def _fail(message: str, **metadata) -> dg.Failure:
    return dg.Failure(description=message, metadata=metadata, allow_retries=False)


@dg.op(description="Check that every configured Ollama host answers, and record its version.")
def check_ollama_hosts(context: dg.OpExecutionContext, ollama: OllamaResource) -> dg.Output[list[str]]:
    """The configured hosts, once each answered `GET /api/version`."""
    client = ollama.client()
    hosts = client.http.hosts
    versions: dict[str, str] = {}
    silent: dict[str, str] = {}
    for host in hosts:
        try:
            versions[host] = client.version(host) or "unknown"
            context.log.info(f"Ollama {versions[host]} answers at {host}")
        except EmbedderError as error:
            silent[host] = str(error)
            context.log.error(f"Ollama does not answer at {host}: {error}")
    if silent:
        names = ", ".join(silent)
        raise _fail(
            f"{len(silent)} of {len(hosts)} Ollama host(s) do not answer: {names}. Start `ollama serve` there "
            f"or remove it from OLLAMA_HOST. ({'; '.join(f'{h}: {e}' for h, e in silent.items())})",
            silent_hosts=dg.MetadataValue.json(silent),
        )
    return dg.Output(hosts, metadata={"hosts": len(hosts), **versions})


@dg.op(description="Pull the configured model where it is missing, logging the server's progress lines.")
def pull_model(
    context: dg.OpExecutionContext, config: PullConfig, ollama: OllamaResource, hosts: list[str]
) -> dg.Output[list[str]]:
    """Pull on each host that lacks the model (or on all with `force_pull`); the hosts, for the next op."""
    client = ollama.client()
    report: dict[str, dict] = {}
    pulled_bytes, pull_seconds = 0, 0.0
    for host in hosts:
        digest = model_digest(client, host)
        if digest is not None and not config.force_pull:
            context.log.info(
                f"{host} already has {ollama.model} (digest {digest[:12]}): not pulling it; set force_pull "
                "to fetch a newer build"
            )
            report[host] = {"pulled": False, "digest": digest}
            continue
        context.log.info(f"pulling {ollama.model} onto {host}" + (" (force_pull)" if digest else ""))
        progress = PullProgress(
            context.log.info, host, every_percent=config.log_every_percent, every_seconds=config.log_every_seconds
        )
        started = time.perf_counter()
        try:
            pull(client, host, progress, insecure=config.insecure)
        except StreamError as error:
            raise _fail(f"pulling {ollama.model} on {host} failed: {error}", host=host, lines=progress.lines) from error
        except EmbedderError as error:
            raise _fail(f"could not pull {ollama.model} on {host}: {error}", host=host) from error
        seconds = time.perf_counter() - started
        pulled_bytes += progress.total_bytes
        pull_seconds += seconds
        report[host] = {
            "pulled": True, "digest": model_digest(client, host), "bytes": progress.total_bytes,
            "seconds": round(seconds, 3), "progress_lines": progress.lines,
        }
        context.log.info(
            f"{host}: pulled {ollama.model} ({human_bytes(progress.total_bytes)} in {len(progress.layers)} "
            f"layer(s)) in {seconds:.1f}s"
        )
    pulled_on = [host for host, entry in report.items() if entry["pulled"]]
    return dg.Output(
        hosts,
        metadata={
            "model": ollama.model, "pulled_on": ", ".join(pulled_on) or "none", "bytes_pulled": pulled_bytes,
            "pull_seconds": round(pull_seconds, 3), "hosts": dg.MetadataValue.json(report),
        },
    )


@dg.op(description="Confirm the model's embedding and context length with /api/show, the same on every host.")
def confirm_model_shape(context: dg.OpExecutionContext, ollama: OllamaResource, hosts: list[str]) -> dg.Output[dict]:
    """The model's shape (architecture, embedding_length, context_length, digest) as every host reports it."""
    client = ollama.client()
    shapes, digests = {}, {}
    for host in hosts:
        try:
            shapes[host], digests[host] = model_shape(client, host), model_digest(client, host)
        except EmbedderError as error:
            raise _fail(f"could not read {ollama.model}'s details on {host}: {error}", host=host) from error
        shape = shapes[host]
        context.log.info(
            f"{host}: {ollama.model} ({shape.architecture or 'unknown architecture'}) gives "
            f"{shape.embedding_length}-dimensional vectors, context {shape.context_length} tokens, "
            f"digest {(digests[host] or '')[:12]}"
        )
        if shape.capabilities is not None and "embedding" not in shape.capabilities:
            raise _fail(
                f"{ollama.model} on {host} is not an embedding model (capabilities: {', '.join(shape.capabilities)}); "
                "set ORCA_EMBED_MODEL to one, e.g. nomic-embed-text"
            )
        if shape.embedding_length is None:
            raise _fail(f"{host} reports no embedding length for {ollama.model}; is it an embedding model?")
        if shape.context_length is None:
            context.log.warning(f"{host} reports no context length for {ollama.model}; runs will assume 2048")
    first = shapes[hosts[0]]
    if len({(s.embedding_length, s.context_length) for s in shapes.values()}) > 1 or len(set(digests.values())) > 1:
        raise _fail(
            f"the hosts serve different builds of {ollama.model}: "
            + "; ".join(f"{h}: digest {(digests[h] or '?')[:12]}, {s.embedding_length} dims" for h, s in shapes.items())
            + ". Launch prepare_model_job with force_pull so every host fetches the same build."
        )
    if ollama.dimensions is not None and not 0 < ollama.dimensions <= first.embedding_length:
        raise _fail(f"dimensions={ollama.dimensions} is outside 1..{first.embedding_length} for {ollama.model}")
    summary = {
        "model": ollama.model, "architecture": first.architecture, "embedding_length": first.embedding_length,
        "context_length": first.context_length, "digest": digests[hosts[0]] or "",
    }
    return dg.Output(summary, metadata={**summary, "hosts": len(hosts)})


@dg.op(description="Load the model on every host (an embed call without input) and record the load time.")
def load_model(
    context: dg.OpExecutionContext, config: LoadConfig, ollama: OllamaResource, shape: dict
) -> dg.Output[dict]:
    """Seconds each host took to load the model, kept loaded for `keep_alive`."""
    keep_alive = config.keep_alive or ollama.keep_alive
    client = ollama.client()
    timings: dict[str, dict] = {}
    for host in client.http.hosts:
        try:
            timing = load(client, host, keep_alive)
        except EmbedderError as error:
            raise _fail(f"could not load {ollama.model} on {host}: {error}", host=host) from error
        server = "" if timing.server_load_seconds is None else f" (server load {timing.server_load_seconds:.2f}s)"
        context.log.info(f"{host}: {ollama.model} loaded in {timing.seconds:.2f}s{server}, kept for {keep_alive}")
        timings[host] = {"seconds": round(timing.seconds, 3), "server_load_seconds": timing.server_load_seconds}
    slowest = max(entry["seconds"] for entry in timings.values())
    return dg.Output(
        {"model": shape["model"], "load_seconds": slowest},
        metadata={
            "model": shape["model"], "load_seconds": slowest, "keep_alive": keep_alive,
            "hosts": dg.MetadataValue.json(timings),
        },
    )


@dg.job(
    description="Check the Ollama hosts, pull the embedding model where missing, confirm its shape and load it.",
    tags={KIND_TAG: "prepare_model"},
)
def prepare_model_job() -> None:
    """check_ollama_hosts -> pull_model -> confirm_model_shape -> load_model."""
    load_model(confirm_model_shape(pull_model(check_ollama_hosts())))
