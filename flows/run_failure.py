"""The `training-run-failure` flow: what the failure automation runs for a failed training run.

Deployed as `training-run-failure/automation` (prefect.yaml). The automation
`retrain: training run failed` (deployments/automations.py) starts it when a
`training-pipeline` flow run enters Failed, Crashed or TimedOut, passing the flow run's id,
state name and message. It records the run as failed in the state store (a run that died
before its own hooks could is recorded here), recounts its schedule's statistics, trips the
circuit breaker, and emits `retrain.run.failed` (and `retrain.schedule.paused`), which the
notification automation turns into a webhook or Slack message.
"""

from __future__ import annotations

from prefect import flow, task

from retrain.services.schedules import FailureReport


@task(name="record-failed-run", retries=2, retry_delay_seconds=5)
def record_failed_run(flow_run_id: str, state_name: str, message: str | None) -> FailureReport:
    """Store the failure, recount the schedule, pause it after too many failures in a row."""
    from retrain.services.schedules import record_failed_run as record

    return record(flow_run_id, state_name, message)


@task(name="announce-failure")
def announce_failure(report: FailureReport) -> None:
    """Emit the events the notification automation listens to."""
    from retrain.services.lifecycle import identify
    from tasks.shared import events

    if report.run_id is None:
        return
    run = identify(report.run_id)
    payload = report.model_dump(mode="json")
    events.emit(events.RUN_FAILED, run, payload)
    if report.schedule_paused:
        events.emit(events.SCHEDULE_PAUSED, run, payload)


@flow(name="training-run-failure", log_prints=True)
def handle_run_failure(flow_run_id: str, state_name: str = "Failed",
                       message: str | None = None) -> FailureReport:
    """Record a failed training run, update its schedule, and announce it.

    Args:
        flow_run_id: The training flow run that failed (the automation fills it in).
        state_name: Its final state: Failed, Crashed or TimedOut.
        message: Its state message, recorded as the run's error.
    """
    report = record_failed_run(flow_run_id, state_name, message)
    announce_failure(report)
    print(f"{report.run_name}: {report.status} at {report.error_stage}; schedule "
          f"{'paused' if report.schedule_paused else 'unchanged'}")
    return report
