"""What a final Prefect state means for a run record, as reconciliation writes it."""

from __future__ import annotations

import pytest

from retrain.adapters.prefect_runs import FlowRunState
from retrain.domain.status import RunStatus
from retrain.services.reconcile import status_of


@pytest.mark.parametrize("state_type,name,status", [
    ("COMPLETED", "Completed", RunStatus.COMPLETED),
    ("COMPLETED", "NotBlessed", RunStatus.NOT_BLESSED),
    ("COMPLETED", "Skipped", RunStatus.SKIPPED),
    ("FAILED", "Failed", RunStatus.FAILED),
    ("FAILED", "TimedOut", RunStatus.FAILED),
    ("CRASHED", "Crashed", RunStatus.CRASHED),
    ("CANCELLED", "Cancelled", RunStatus.CANCELLED),
])
def test_each_final_state_maps_to_its_status(state_type, name, status):
    state = FlowRunState(id="f", state_type=state_type, state_name=name)
    assert state.final and status_of(state) is status


@pytest.mark.parametrize("state_type", ["SCHEDULED", "PENDING", "RUNNING", "CANCELLING", "PAUSED"])
def test_states_that_may_still_change_are_not_final(state_type):
    assert not FlowRunState(id="f", state_type=state_type, state_name=state_type.title()).final
