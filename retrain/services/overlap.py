"""The overlap policy at work: admit, queue, skip or cancel a run while another run of the
same model is active (`retrain/domain/overlap.py` decides; this takes the decision under
the model's lock and records it), and the heartbeat that tells live runs from dead ones.

A run's process writes a heartbeat to its record every RETRAIN_HEARTBEAT_SECONDS. A running
record not heard from for RETRAIN_HEARTBEAT_TIMEOUT_SECONDS lost its process: the policy
stops counting it (so a killed worker never blocks a model for good) and reconciliation
(`retrain/services/reconcile.py`) ends it crashed.

Runs side by side (`allow`, the default) may plan the very same stage outputs: two
identical runs started together both miss the stage cache. Before a stage writes, its run
claims the output directory (`wait_for_output`): under the model's lock, the stage is
recorded running there unless a live run's stage already is; then it waits, and uses what
that stage wrote once it has finished (or runs the stage itself if it failed or its
process died).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from retrain.domain.clock import utcnow
from retrain.domain.overlap import ActiveRun, OverlapAction, OverlapPolicy, OverlapVerdict, alive, decide
from retrain.domain.stages import Stage
from retrain.domain.status import RunStatus, StageStatus
from retrain.services.lifecycle import refresh_schedule
from retrain.settings import get_settings
from retrain.store import liveness, runs
from retrain.store.sessions import sessions

logger = logging.getLogger("retrain.overlap")

_ENDING = {OverlapAction.SKIP: RunStatus.SKIPPED, OverlapAction.CANCEL: RunStatus.CANCELLED}


def _policy(config: dict[str, Any]) -> OverlapPolicy:
    try:
        return OverlapPolicy(config.get("overlap") or OverlapPolicy.ALLOW.value)
    except ValueError:
        return OverlapPolicy.ALLOW


def admit(flow_run_id: str) -> OverlapVerdict:
    """Decide, under the model's lock, whether this flow run's run goes, waits, or ends now
    (then it is recorded skipped or cancelled with the reason). A flow run without a record
    always goes."""
    settings = get_settings()
    with sessions().begin() as session:
        run = runs.run_for_flow_run(session, flow_run_id)
        if run is None or run.admitted_at is not None:
            return OverlapVerdict(action=OverlapAction.GO)
        if RunStatus(run.status).terminal:  # ended meanwhile (cancelled by a person)
            return OverlapVerdict(action=OverlapAction.CANCEL, reason=run.error_message)
        policy = _policy(run.config)
        if policy is OverlapPolicy.ALLOW:
            run.admitted_at = utcnow()
            return OverlapVerdict(action=OverlapAction.GO)
        liveness.lock_model(session, run.registered_model_id)
        now = utcnow()
        active = [
            ActiveRun(run_number=other.run_number, flow_run_id=other.flow_run_id,
                      admitted=other.admitted_at is not None)
            for other in liveness.running_runs(session, run.registered_model_id)
            if other.id != run.id and alive(other.heartbeat_at, other.started_at, now,
                                            settings.heartbeat_timeout_seconds)
        ]
        verdict = decide(policy, run.registered_model.name, run.run_number, active)
        if verdict.action is OverlapAction.GO:
            run.admitted_at = now
        elif verdict.action in _ENDING:
            runs.end_run(session, run.id, _ENDING[verdict.action], verdict.reason)
            refresh_schedule(session, run)
        return verdict


def wait_for_admission(flow_run_id: str, say=print) -> OverlapVerdict:
    """`admit` until the run goes or ends: a queued run looks again every
    RETRAIN_OVERLAP_POLL_SECONDS and says once (through `say`) what it waits for."""
    said = None
    while True:
        verdict = admit(flow_run_id)
        if verdict.action is not OverlapAction.WAIT:
            return verdict
        if verdict.reason != said:
            say(verdict.reason)
            said = verdict.reason
        time.sleep(get_settings().overlap_poll_seconds)


def claim_output(flow_run_id: str, stage: Stage, output_uri: str) -> int | None:
    """Record this flow run's `stage` running into `output_uri`, unless a live run's stage
    is running there: then that run's number (nothing recorded). A flow run without a
    record claims nothing and gets None."""
    settings = get_settings()
    with sessions().begin() as session:
        run = runs.run_for_flow_run(session, flow_run_id)
        if run is None:
            return None
        liveness.lock_model(session, run.registered_model_id)
        now = utcnow()
        for other in liveness.runs_writing(session, output_uri, except_run=run.id):
            if alive(other.heartbeat_at, other.started_at, now,
                     settings.heartbeat_timeout_seconds):
                return other.run_number
        runs.record_stage(session, run.id, stage, StageStatus.RUNNING, output_uri=output_uri)
        return None


def wait_for_output(flow_run_id: str, stage: Stage, output_uri: str, say=print) -> int | None:
    """`claim_output` until this run holds the directory, looking again every
    RETRAIN_OVERLAP_POLL_SECONDS and saying once per holder (through `say`) what it waits
    for. Returns the number of the last run it waited for, None if it never waited."""
    waited = None
    while (holder := claim_output(flow_run_id, stage, output_uri)) is not None:
        if holder != waited:
            say(f"{stage} waits for run #{holder}, which is writing the same outputs "
                f"({output_uri})")
            waited = holder
        time.sleep(get_settings().overlap_poll_seconds)
    return waited


class Heartbeat:
    """A daemon thread writing the flow run's heartbeat until its record ends or `stop()`."""

    def __init__(self, flow_run_id: str, every_seconds: float | None = None):
        self.flow_run_id = flow_run_id
        self.every = every_seconds or get_settings().heartbeat_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retrain-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                with sessions().begin() as session:
                    if not liveness.beat(session, self.flow_run_id):
                        return
            except Exception:  # a store hiccup: try again next beat
                logger.warning("could not write the heartbeat of %s", self.flow_run_id,
                               exc_info=True)


_beating: dict[str, Heartbeat] = {}


def start_heartbeat(flow_run_id: str) -> None:
    """Start the flow run's heartbeat in this process (once)."""
    if flow_run_id not in _beating:
        _beating[flow_run_id] = Heartbeat(flow_run_id).start()


def stop_heartbeat(flow_run_id: str) -> None:
    """Stop the flow run's heartbeat (its run ended)."""
    beating = _beating.pop(str(flow_run_id), None)
    if beating is not None:
        beating.stop()
