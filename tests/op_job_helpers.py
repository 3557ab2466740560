"""Reading what an op job run logged and returned: its user log lines, op output metadata and failure text."""

from __future__ import annotations

import dagster as dg


def user_logs(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The `context.log` lines of a run, in order, as stored in the instance's event log."""
    return [entry.user_message for entry in instance.all_logs(run_id) if entry.dagster_event is None]


def output_metadata(result: dg.ExecuteInProcessResult, step: str) -> dict:
    """The metadata of `step`'s output, as plain values."""
    for event in result.all_events:
        if event.is_successful_output and event.step_key == step:
            return {key: value.value for key, value in event.step_output_data.metadata.items()}
    raise AssertionError(f"{step} produced no output")


def failure(result: dg.ExecuteInProcessResult) -> tuple[str, str]:
    """(step, description) of the run's first step failure."""
    events = result.get_step_failure_events()
    assert events, "the run did not fail in a step"
    data = events[0].step_failure_data
    text = data.user_failure_data.description if data.user_failure_data else data.error.message
    return events[0].step_key, text
