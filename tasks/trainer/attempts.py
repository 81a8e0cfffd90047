"""What to do after each attempt of a Trainer that runs as its own flow run (pure, no Prefect).

The training flow submits the `gpu-trainer` deployment once per attempt and watches it.
`classify` turns what it sees (the child flow run's state; how long its pod has been
unschedulable, from the Kubernetes observer's events) into an outcome; `next_step`
decides from every attempt so far:

- succeeded: done.
- failed (the training code raised, e.g. no GPU visible): give up, never retried blindly.
- unschedulable: the next GPU option (`gpu.fallback`); none left: give up.
- interrupted (pod evicted, preempted, killed, node lost: the run Crashed): the same
  option again, resuming from the last checkpoint, while `infrastructure_retries` lasts.
- cancelled by someone else: give up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from retrain.domain.recommender import GpuConfig, GpuOption
from retrain.domain.refs import TrainerAttempt
from retrain.domain.status import AttemptOutcome


class Action(str, Enum):
    """What the watcher does next."""

    SUBMIT = "submit"
    DONE = "done"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class Step:
    """The next step: submit `option` (SUBMIT), return (DONE) or fail with `reason`."""

    action: Action
    option: GpuOption | None = None
    reason: str = ""


def option_of(attempt: TrainerAttempt) -> GpuOption:
    """The GPU option an attempt asked for."""
    return GpuOption(type=attempt.gpu_type, count=max(attempt.gpu_count, 1))


def describe(attempt: TrainerAttempt) -> str:
    """'#2 on 4×nvidia-tesla-t4: unschedulable (0/3 nodes are available …)'."""
    where = option_of(attempt).label() if attempt.gpu_count else "CPU"
    text = f"#{attempt.number} on {where}: {attempt.outcome}"
    return f"{text} ({attempt.reason})" if attempt.reason else text


def next_step(gpu: GpuConfig, attempts: list[TrainerAttempt]) -> Step:
    """The step after `attempts` (each finished) under `gpu`'s options and retry budget."""
    options = gpu.options
    if not attempts:
        return Step(Action.SUBMIT, options[0])
    last = attempts[-1]
    history = "; ".join(describe(a) for a in attempts)
    if last.outcome == AttemptOutcome.SUCCEEDED:
        return Step(Action.DONE)
    if last.outcome == AttemptOutcome.FAILED:
        return Step(Action.GIVE_UP, reason=f"the trainer failed in attempt {describe(last)}; "
                    "errors in training code are not retried")
    if last.outcome == AttemptOutcome.CANCELLED:
        return Step(Action.GIVE_UP, reason=f"the trainer flow run was cancelled ({history})")
    if last.outcome == AttemptOutcome.UNSCHEDULABLE:
        tried = {option_of(a) for a in attempts if a.outcome == AttemptOutcome.UNSCHEDULABLE}
        for option in options:
            if option not in tried:
                return Step(Action.SUBMIT, option)
        return Step(Action.GIVE_UP, reason="no GPU option could be scheduled within "
                    f"{gpu.unschedulable_wait_seconds} s: {history}")
    if last.outcome == AttemptOutcome.INTERRUPTED:
        used = sum(1 for a in attempts if a.outcome == AttemptOutcome.INTERRUPTED)
        if used <= gpu.infrastructure_retries:
            return Step(Action.SUBMIT, option_of(last))
        return Step(Action.GIVE_UP, reason=f"the trainer pod was interrupted {used} times; "
                    f"infrastructure_retries ({gpu.infrastructure_retries}) used up: {history}")
    raise ValueError(f"attempt #{last.number} has not finished ({last.outcome})")


@dataclass(frozen=True)
class Observation:
    """What the watcher sees of one attempt at one moment."""

    state_type: str
    """The child flow run's state type: SCHEDULED, PENDING, RUNNING, COMPLETED, …"""
    state_message: str | None
    """The state's message (a crash's or failure's reason)."""
    has_run: bool
    """The child has been RUNNING at some point (its pod started)."""
    waiting_seconds: float
    """Seconds since the attempt was submitted."""
    unschedulable_seconds: float | None
    """Seconds since the pod was first reported unschedulable; None if it never was."""
    unschedulable_reason: str | None = None
    """The scheduler's message, e.g. '0/3 nodes are available: …'."""


# What Prefect and the gpu-trainer flow put before the error itself.
_WRAPPING = re.compile(r"^(Flow run encountered an exception: )?(StageError: )?(Trainer failed: )?")


def classify(
    observation: Observation, wait_seconds: float,
) -> tuple[AttemptOutcome, str | None] | None:
    """(outcome, reason) once an attempt has ended or must be given up; None: keep watching."""
    state = observation.state_type.upper()
    message = _WRAPPING.sub("", observation.state_message or "") or None
    if state == "COMPLETED":
        return AttemptOutcome.SUCCEEDED, None
    if state == "FAILED":
        return AttemptOutcome.FAILED, message or "the trainer flow run failed"
    if state == "CRASHED":
        return (AttemptOutcome.INTERRUPTED,
                message or "the trainer pod ended without reporting a state")
    if state == "CANCELLED":
        return AttemptOutcome.CANCELLED, message
    if state in ("RUNNING", "CANCELLING") or observation.has_run:
        return None
    if (observation.unschedulable_seconds is not None
            and observation.unschedulable_seconds >= wait_seconds):
        return AttemptOutcome.UNSCHEDULABLE, (
            f"pod unschedulable for {observation.unschedulable_seconds:.0f} s: "
            f"{observation.unschedulable_reason or 'no node fits the request'}"
        )
    if state == "SCHEDULED" and observation.waiting_seconds >= wait_seconds:
        # No worker took it: another GPU type would not help.
        return AttemptOutcome.FAILED, (
            f"no worker picked up the trainer flow run within "
            f"{observation.waiting_seconds:.0f} s: is a worker polling its work pool?"
        )
    return None
