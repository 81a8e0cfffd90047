"""A tiny flow for tests of the Prefect server + process worker mechanics.

Every side effect is a marker file named after the flow run, so a test can tell what
happened to its run from the outside: `<id>.started` when the body begins, `<id>.crashed` /
`<id>.cancelled` (holding the state message) when the matching hook runs.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import Flow, flow
from prefect.client.schemas.objects import FlowRun
from prefect.runtime import flow_run as current_run
from prefect.states import State


def _mark(marker_dir: str, flow_run_id: object, suffix: str, text: str = "") -> None:
    Path(marker_dir, f"{flow_run_id}.{suffix}").write_text(text)


def _on_crashed(flow: Flow, flow_run: FlowRun, state: State) -> None:
    _mark(flow_run.parameters["marker_dir"], flow_run.id, "crashed", state.message or "")


def _on_cancellation(flow: Flow, flow_run: FlowRun, state: State) -> None:
    _mark(flow_run.parameters["marker_dir"], flow_run.id, "cancelled", state.message or "")


@flow(name="probe", on_crashed=[_on_crashed], on_cancellation=[_on_cancellation])
def probe(seconds: float, marker_dir: str) -> float:
    """Mark the run as started, then stay busy for `seconds`; returns `seconds`."""
    _mark(marker_dir, current_run.id, "started")
    deadline = time.monotonic() + seconds
    # Short sleeps keep the process responsive to signals while it "works".
    while time.monotonic() < deadline:
        time.sleep(0.1)
    return seconds
