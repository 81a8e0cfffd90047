"""Runs side by side that plan the same stage outputs (identical runs started together):
one writes, the other waits and uses what it wrote, or writes itself if the first failed
or died. Run records on the session's store (SQLite), Prefect on the test harness."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from pathlib import Path

import pytest
from prefect import flow

from retrain.domain.examples import recommender_config
from retrain.domain.refs import ArtifactRef, StageOutput
from retrain.domain.stages import Stage
from retrain.domain.status import StageStatus
from retrain.services import lifecycle, overlap
from retrain.settings import get_settings
from retrain.store import runs
from retrain.store.sessions import sessions
from tasks.shared.caching import MARKER, StagePlan, write_marker
from tasks.shared.fingerprint import fingerprint
from tasks.shared.stage import run_stage, stage_task

STAGE = Stage.TRANSFORM  # any real stage will do
CALLS: list[str] = []


def claim_plan(root: str) -> StagePlan:
    return StagePlan(stage=STAGE, fingerprint=fingerprint(STAGE, {"root": root}),
                     output_dir=f"{root}/Shared")


def write_outputs(plan: StagePlan, who: str) -> StageOutput:
    CALLS.append(who)
    out = Path(plan.output_dir) / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "writer.txt").write_text(who)
    ref = ArtifactRef(type_name="TransformGraph", uri=str(out))
    return StageOutput(stage=STAGE, fingerprint=plan.fingerprint, artifacts={"out": ref})


def _core(plan: StagePlan, root: str) -> StageOutput:
    return write_outputs(plan, "waiting run")


@stage_task(STAGE, claim_plan)
def shared_stage(root: str) -> StageOutput:
    return run_stage(STAGE, claim_plan, _core, root)


@flow
def recorded_run(root: str, model_name: str):
    from prefect.runtime import flow_run

    lifecycle.open_run(_config(root, model_name), flow_run.get_id())
    return shared_stage(root, return_state=True)


def _config(root: str, model_name: str):
    return recommender_config(root, "retrieval", model_name=model_name, pipeline_root=root)


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch):
    CALLS.clear()
    monkeypatch.setenv("RETRAIN_OVERLAP_POLL_SECONDS", "0.2")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _holder(root: str, model_name: str) -> tuple[str, StagePlan]:
    """Another live run of the model, its stage claimed and running into the directory."""
    flow_run_id = str(uuid.uuid4())
    lifecycle.open_run(_config(root, model_name), flow_run_id)
    plan = claim_plan(root)
    assert overlap.claim_output(flow_run_id, STAGE, plan.output_dir) is None
    return flow_run_id, plan


def _later(seconds: float, action) -> threading.Thread:
    def go():
        time.sleep(seconds)
        action()
    thread = threading.Thread(target=go)
    thread.start()
    return thread


def _stage_row(flow_run_id: str):
    with sessions().begin() as session:
        run = runs.run_for_flow_run(session, flow_run_id)
        row = next(s for s in run.stages if s.stage == STAGE)
        return run.run_number, row.status, row.message, row.output_uri


def test_the_second_run_waits_and_uses_what_the_first_wrote(prefect_harness, tmp_path):
    root = str(tmp_path)
    holder, plan = _holder(root, "claims-wait")

    def finish():
        write_marker(plan, write_outputs(plan, "first run"))
        lifecycle.record_stage(holder, STAGE, StageStatus.COMPLETED, output_uri=plan.output_dir)

    thread = _later(1.5, finish)
    started = time.monotonic()
    state = recorded_run(root, "claims-wait")
    thread.join()
    assert state.name == "Completed" and time.monotonic() - started >= 1.5
    assert CALLS == ["first run"]  # one writer: the waiting run did not write
    assert Path(state.result()["out"].uri, "writer.txt").read_text() == "first run"
    assert _stage_row(str(state.state_details.flow_run_id)) == (
        2, StageStatus.CACHED, "written by run #1 while this run waited", plan.output_dir)


def test_a_failed_first_run_leaves_the_stage_to_the_waiting_run(prefect_harness, tmp_path):
    root = str(tmp_path)
    holder, plan = _holder(root, "claims-fail")
    thread = _later(1.0, lambda: lifecycle.record_stage(holder, STAGE, StageStatus.FAILED,
                                                        message="out of memory"))
    state = recorded_run(root, "claims-fail")
    thread.join()
    assert state.name == "Completed" and CALLS == ["waiting run"]
    assert (Path(plan.output_dir) / MARKER).is_file()
    assert _stage_row(str(state.state_details.flow_run_id))[:2] == (2, StageStatus.COMPLETED)


def test_a_dead_first_run_does_not_hold_the_directory(prefect_harness, tmp_path):
    """Its process stopped beating (a killed pod): the stage runs at once."""
    root = str(tmp_path)
    holder, plan = _holder(root, "claims-dead")
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    with sessions().begin() as session:
        run = runs.run_for_flow_run(session, holder)
        run.heartbeat_at = long_ago
        run.started_at = long_ago
    started = time.monotonic()
    state = recorded_run(root, "claims-dead")
    assert state.name == "Completed" and CALLS == ["waiting run"]
    assert time.monotonic() - started < get_settings().heartbeat_timeout_seconds


def test_runs_of_other_directories_or_without_a_record_claim_at_once(tmp_path):
    root = str(tmp_path)
    holder, plan = _holder(root, "claims-other")
    other = str(uuid.uuid4())
    lifecycle.open_run(_config(root, "claims-other"), other)
    assert overlap.claim_output(other, STAGE, plan.output_dir) == 1
    assert overlap.claim_output(other, STAGE, f"{root}/Elsewhere") is None
    assert overlap.claim_output(str(uuid.uuid4()), STAGE, plan.output_dir) is None
