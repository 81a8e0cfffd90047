"""The Trainer as its own flow run: submit the `gpu-trainer` deployment, watch, fall back,
resume. The decisions are `tasks.trainer.attempts` (pure); this module does the I/O.

Each attempt is a `run_deployment` of `gpu.deployment` (a subflow of the Trainer task, so
the Prefect UI shows it under the run) with the attempt's GPU option as job variables
(`deployments.gpu_jobs`: GPU count, node selector, tolerations). While it is pending, the
Kubernetes worker's observer reports its pod's scheduling as `prefect.kubernetes.pod.*`
events with a `kubernetes.diagnosis` label; a pod unschedulable for longer than
`gpu.unschedulable_wait_seconds` is cancelled (the worker deletes its Job) and the next
option is submitted. A Crashed attempt (evicted, preempted, killed) is resubmitted; the
library run_fn resumes from the epoch checkpoint beside the Trainer's output directory.
Every attempt is written to the run record when submitted and when it ends.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from uuid import UUID, uuid4

from prefect import get_run_logger

from tasks.shared import tracking
from tasks.shared.caching import StagePlan
from retrain.domain.config import PipelineConfig
from retrain.domain.recommender import GpuOption
from retrain.domain.refs import StageOutput, TrainerAttempt, TrainerOutput
from retrain.domain.status import AttemptOutcome
from retrain.settings import get_settings
from tasks.shared.stage import StageError
from tasks.trainer import attempts as policy
from tasks.trainer import core
from tasks.trainer.request import OUTPUT_FILE, TrainerRequest
from retrain.domain.clock import utcnow

UNSCHEDULABLE = "Unschedulable"


def checkpointed_epoch(checkpoint_dir: str) -> int:
    """Epochs the latest checkpoint under `checkpoint_dir` holds (0 if none), read from
    TensorFlow's `checkpoint` index file (`model_checkpoint_path: "epoch-3"`)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(f"{checkpoint_dir.rstrip('/')}/checkpoint")
    if not fs.exists(path):
        return 0
    with fs.open(path, "r") as handle:
        for line in handle:
            if line.startswith("model_checkpoint_path:"):
                return int(line.split(":", 1)[1].strip().strip('"').rsplit("-", 1)[1])
    return 0


def read_output(plan: StagePlan) -> TrainerOutput:
    """The TrainerOutput the gpu-trainer flow wrote beside the model."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(f"{plan.output_dir}/{OUTPUT_FILE}")
    if not fs.exists(path):
        raise StageError(core.STAGE, f"the trainer flow run completed but wrote no {path}")
    with fs.open(path, "r") as handle:
        return TrainerOutput.model_validate_json(handle.read())


def _remove(directory: str) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(directory)
    if fs.exists(path):
        fs.rm(path, recursive=True)


class _Watcher:
    """Reads one attempt's flow run and its pod events from the Prefect API."""

    def __init__(self, client: Any, flow_run_id: UUID, submitted: dt.datetime):
        self.client = client
        self.flow_run_id = flow_run_id
        self.submitted = submitted
        self.has_run = False
        self.unschedulable_since: dt.datetime | None = None
        self.unschedulable_reason: str | None = None

    def _pod_events(self) -> None:
        from prefect.events.filters import (
            EventFilter,
            EventNameFilter,
            EventOccurredFilter,
            EventRelatedFilter,
        )

        page = self.client.read_events(filter=EventFilter(
            occurred=EventOccurredFilter(since=self.submitted - dt.timedelta(seconds=5)),
            event=EventNameFilter(prefix=["prefect.kubernetes.pod."]),
            related=EventRelatedFilter(id=[f"prefect.flow-run.{self.flow_run_id}"]),
        ), limit=50)
        for event in page.events:
            diagnosis = event.resource.get("kubernetes.diagnosis") or ""
            if diagnosis.startswith(UNSCHEDULABLE) and (
                    self.unschedulable_since is None or event.occurred < self.unschedulable_since):
                self.unschedulable_since = event.occurred
                self.unschedulable_reason = diagnosis
            if event.event in ("prefect.kubernetes.pod.running",
                               "prefect.kubernetes.pod.succeeded"):
                self.has_run = True

    def observe(self) -> tuple[policy.Observation, Any]:
        """The attempt now: state, whether it ever ran, how long it has been unschedulable."""
        flow_run = self.client.read_flow_run(self.flow_run_id)
        state = flow_run.state
        if state.is_running() or flow_run.start_time is not None:
            self.has_run = True
        if not self.has_run:
            self._pod_events()
        now = utcnow()
        since = self.unschedulable_since
        return policy.Observation(
            state_type=state.type.value, state_message=state.message, has_run=self.has_run,
            waiting_seconds=(now - self.submitted).total_seconds(),
            unschedulable_seconds=None if since is None else (now - since).total_seconds(),
            unschedulable_reason=self.unschedulable_reason,
        ), flow_run


def _cancel(client: Any, flow_run: Any, reason: str) -> None:
    """Give the attempt up and wait until its Job is gone, so two attempts never train into
    the same directory. A run no worker took is cancelled directly. Otherwise it is set
    Cancelling: Prefect's server marks it Cancelled when its CANCELLING timeout passes and
    the Kubernetes worker then deletes the Job (`kill_infrastructure`)."""
    from prefect.states import Cancelled, Cancelling

    logger = get_run_logger()
    if flow_run.state.is_scheduled():
        client.set_flow_run_state(flow_run.id, Cancelled(message=reason), force=True)
        return
    client.set_flow_run_state(flow_run.id, Cancelling(message=reason), force=True)
    wait = get_settings().trainer_cancel_wait_seconds
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if client.read_flow_run(flow_run.id).state.is_final():
            return
        time.sleep(1.0)
    logger.warning("trainer flow run %s is still cancelling after %.0f s; its Job may remain "
                   "until the Prefect server's CANCELLING timeout", flow_run.id, wait)


def _submit(request: TrainerRequest, deployment: str) -> UUID:
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    from deployments.gpu_jobs import job_variables
    from retrain.adapters.prefect import api_retries

    config = request.attempt_config
    try:
        with api_retries():
            flow_run = run_deployment(
                name=deployment,
                parameters={"request": request.model_dump(mode="json", by_alias=True)},
                job_variables=job_variables(config.gpu),
                timeout=0,
                as_subflow=True,
                tags=["retrain", "trainer", f"attempt-{request.attempt}"],
                # A retried request (500, dropped connection) never makes a second job.
                idempotency_key=f"trainer-attempt-{request.attempt}-{uuid4()}",
            )
    except ObjectNotFound as exc:
        raise StageError(core.STAGE, (
            f"gpu.deployment: no deployment {deployment!r} on the Prefect server; create it "
            "with `prefect deploy --all` (prefect.yaml: gpu-trainer/kubernetes)")) from exc
    return flow_run.id


def _run_attempt(client: Any, request: TrainerRequest, plan: StagePlan) -> TrainerAttempt:
    logger = get_run_logger()
    gpu = request.config.gpu
    option = request.gpu
    attempt = TrainerAttempt(
        number=request.attempt, gpu_type=option.type,
        gpu_count=option.count if gpu.enabled else 0,
        resumed_from_epoch=checkpointed_epoch(core.checkpoint_dir(plan)),
        started_at=utcnow(),
    )
    flow_run_id = _submit(request, gpu.deployment)
    attempt = attempt.model_copy(update={"flow_run_id": str(flow_run_id)})
    tracking.record_attempt(request.run_flow_run_id, attempt)
    logger.info("Trainer attempt %d on %s: flow run %s of %s%s", attempt.number,
                option.label() if gpu.enabled else "CPU", flow_run_id, gpu.deployment,
                f", resuming after epoch {attempt.resumed_from_epoch}"
                if attempt.resumed_from_epoch else "")
    watcher = _Watcher(client, flow_run_id, attempt.started_at)
    poll = get_settings().trainer_poll_seconds
    while True:
        observation, flow_run = watcher.observe()
        decided = policy.classify(observation, gpu.unschedulable_wait_seconds)
        if decided is not None:
            break
        time.sleep(poll)
    outcome, reason = decided
    given_up = outcome in (AttemptOutcome.UNSCHEDULABLE, AttemptOutcome.FAILED)
    if given_up and not flow_run.state.is_final():
        _cancel(client, flow_run, reason or outcome.value)
    attempt = attempt.model_copy(update={
        "outcome": outcome, "reason": reason, "finished_at": utcnow()})
    tracking.record_attempt(request.run_flow_run_id, attempt)
    logger.info("Trainer attempt %s", policy.describe(attempt))
    return attempt


def train_remotely(
    plan: StagePlan, config: PipelineConfig, transform: StageOutput, schema: StageOutput,
    run_flow_run_id: str | None,
) -> TrainerOutput:
    """Run the Trainer through `config.gpu.deployment` until an attempt succeeds or the
    options and the infrastructure retry budget are used up (StageError naming each)."""
    from retrain.adapters.prefect import prefect_client

    done: list[TrainerAttempt] = []
    with prefect_client() as client:
        while (step := policy.next_step(config.gpu, done)).action is policy.Action.SUBMIT:
            request = TrainerRequest(
                config=config, transform=transform, schema=schema, plan=plan,
                gpu=step.option or GpuOption(), attempt=len(done) + 1,
                run_flow_run_id=run_flow_run_id,
            )
            done.append(_run_attempt(client, request, plan))
    if step.action is policy.Action.GIVE_UP:
        raise StageError(core.STAGE, step.reason)
    output = read_output(plan)
    _remove(core.checkpoint_dir(plan))  # the model is complete; nothing left to resume
    return output.model_copy(update={"attempts": done})
