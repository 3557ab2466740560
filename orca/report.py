"""The summary `orca materialize` prints, read from the run's materialization metadata and check results."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import dagster as dg
from rich.console import Console
from rich.table import Table


@dataclass
class RunSummary:
    """What one run of `embed_collection_job` did, per asset, as plain values."""

    collection: str
    run_id: str
    success: bool
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset name -> metadata values
    checks_passed: list[str] = field(default_factory=list)
    checks_failed: list[str] = field(default_factory=list)

    def value(self, asset: str, key: str) -> Any:
        """One metadata value of one asset, None when the asset or the key is missing."""
        return self.metadata.get(asset, {}).get(key)

    def portable(self) -> RunSummary:
        """A copy whose metadata holds only plain values, so it can cross a process boundary (pickled)."""
        plain = (str, int, float, bool, type(None))
        metadata = {
            asset: {key: value if isinstance(value, plain) else str(value) for key, value in values.items()}
            for asset, values in self.metadata.items()
        }
        return replace(self, metadata=metadata)


def _plain(value: Any) -> Any:
    """MetadataValue wrappers hold the value a user cares about in `.value`."""
    return getattr(value, "value", value)


def summarize(result: dg.ExecuteInProcessResult, collection: str) -> RunSummary:
    """Collect per-asset metadata and check outcomes from a finished in-process run."""
    summary = RunSummary(collection=collection, run_id=result.run_id, success=result.success)
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization is None:
            continue
        name = materialization.asset_key.path[-1]
        summary.metadata[name] = {key: _plain(value) for key, value in materialization.metadata.items()}
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            summary.checks_passed.append(evaluation.check_name)
        else:
            summary.checks_failed.append(evaluation.check_name)
    return summary


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _counts(summary: RunSummary, asset: str, keys: list[tuple[str, str]]) -> str:
    if asset not in summary.metadata:
        return "[dim]not materialized[/]"
    return " · ".join(f"{_fmt(summary.value(asset, key))} {label}" for key, label in keys)


def render_summary(summary: RunSummary, console: Console) -> None:
    """Print one table: documents, chunks, embeddings, the index and the checks."""
    table = Table(title=f"Collection {summary.collection}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row(
        "documents",
        _counts(
            summary,
            "documents",
            [("added", "added"), ("updated", "updated"), ("unchanged", "unchanged"), ("deleted", "deleted"), ("failed", "failed")],
        ),
    )
    table.add_row(
        "chunks",
        _counts(summary, "chunks", [("added", "added"), ("unchanged", "unchanged"), ("deleted", "deleted"), ("total", "total")]),
    )
    table.add_row(
        "embeddings",
        _counts(
            summary,
            "embeddings",
            [("inputs_sent", "inputs sent"), ("reused", "reused"), ("failed", "failed"),
             ("embed_seconds", "seconds"), ("inputs_per_second", "inputs/s")],
        ),
    )
    if "embedding_index" in summary.metadata:
        table.add_row("index", _fmt(summary.value("embedding_index", "path")))
        table.add_row(
            "rows",
            f"{_fmt(summary.value('embedding_index', 'dagster/row_count'))} "
            f"(model {_fmt(summary.value('embedding_index', 'model'))})",
        )
    else:
        table.add_row("index", "[dim]not published[/]")
    checks = f"{len(summary.checks_passed)} passed · {len(summary.checks_failed)} failed"
    if summary.checks_failed:
        checks += f" [red]({', '.join(summary.checks_failed)})[/]"
    table.add_row("checks", checks)
    table.add_row("run", f"{summary.run_id} ({'[green]success[/]' if summary.success else '[red]failure[/]'})")
    console.print(table)


def render_overview(outcomes: list[Any], console: Console) -> None:
    """One line per collection of a several-collection `orca materialize` (items are materialize_worker.Outcome)."""
    table = Table(title="Collections", title_justify="left")
    table.add_column("collection", overflow="fold")
    table.add_column("result", no_wrap=True)
    for header in ("seconds", "documents", "inputs sent", "index rows"):
        table.add_column(header, justify="right", no_wrap=True)
    for outcome in outcomes:
        summary: RunSummary | None = outcome.summary
        result = {0: "[green]success[/]", 130: "[yellow]interrupted[/]"}.get(outcome.code, "[red]failure[/]")
        documents = None
        if summary is not None and "documents" in summary.metadata:
            documents = sum(summary.value("documents", key) or 0 for key in ("added", "updated", "unchanged"))
        table.add_row(
            outcome.collection, result, f"{outcome.seconds:.1f}", _fmt(documents),
            _fmt(summary.value("embeddings", "inputs_sent") if summary else None),
            _fmt(summary.value("embedding_index", "dagster/row_count") if summary else None),
        )
    console.print(table)
