"""Schedules and automations on a real `prefect server start` (scheduler running) and a
process worker: slots fire at their times, pause/resume/trigger work, statistics follow the
runs, late slots are skipped, failures are recorded and notified, and three failures in a
row pause the schedule.

The server's scheduler loops every 2 s and keeps 5 runs ahead; the worker looks 1 s ahead,
so runs start on time. Notifications go to a local webhook receiver through Prefect's own
custom-webhook notification block and send-notification action.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from prefect_services import (
    deploy_entrypoint,
    prefect_client,
    prefect_server,
    process_environment,
    process_worker,
    wait_for,
    webhook_receiver,
)

pytestmark = [pytest.mark.slow, pytest.mark.service]
REPO = Path(__file__).resolve().parents[2]
BASE = "training-pipeline/base"
SCHEDULER = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS": "5",
}


@pytest.fixture(scope="module")
def prefect(tmp_path_factory, tiny_interactions):
    """Server + worker + the base and failure-handler deployments + automations + receiver."""
    home = tmp_path_factory.mktemp("schedules")
    env = {
        "RETRAIN_HOME": str(home / "retrain"),
        "RETRAIN_DATABASE_URL": f"sqlite:///{home / 'state.db'}",
        "RETRAIN_SCHEDULE_BASE_DEPLOYMENT": BASE,
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(home / "results"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    pool = f"schedules-{uuid.uuid4().hex[:6]}"
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with process_environment(env), \
            prefect_server(home / "server", SCHEDULER) as api_url, \
            process_worker(api_url, pool, home / "worker", env, cwd=REPO), \
            webhook_receiver() as receiver, \
            temporary_settings({PREFECT_API_URL: api_url}):
        deploy_entrypoint(api_url, "flows/training_pipeline.py:training_pipeline", "base",
                          pool, REPO)
        deploy_entrypoint(api_url, "flows/run_failure.py:handle_run_failure", "automation",
                          pool, REPO)
        from deployments.automations import sync_automations

        with prefect_client(api_url) as client:
            synced = sync_automations(client, webhook_url=receiver.url)
            again = sync_automations(client, webhook_url=receiver.url)
        yield {"api_url": api_url, "home": home, "env": env, "data": tiny_interactions,
               "receiver": receiver, "automations": (synced, again)}


def _config(prefect, name: str, data: Path | None = None, **overrides):
    from retrain.domain.examples import recommender_config

    home = prefect["home"]
    return recommender_config(
        data or prefect["data"], "ranking", model_name=name,
        pipeline_root=str(home / "pipelines"), pusher={"serving_base": str(home / "serving")},
        training={"epochs": 2}, beam={"args": ["--direct_running_mode=in_memory"]},
        **overrides,
    )


def _model_with_template(prefect, name: str, data: Path | None = None, **overrides) -> str:
    """A registered model whose template run holds the config (a pending run record)."""
    from retrain.services import runs as operations

    return operations.create_run(_config(prefect, name, data, **overrides)).id


def _deployment(prefect, view):
    with prefect_client(prefect["api_url"]) as client:
        return client.read_deployment_by_name(view.deployment)


def _upcoming(prefect, view) -> list[dt.datetime]:
    from retrain.adapters import prefect_deployments as schedule_deployments

    with prefect_client(prefect["api_url"]) as client:
        return schedule_deployments.upcoming_runs(client, _deployment(prefect, view).id)


def _flow_run(prefect, flow_run_id):
    with prefect_client(prefect["api_url"]) as client:
        return client.read_flow_run(flow_run_id)


def _flow_runs(prefect, view):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deployment_id = _deployment(prefect, view).id
    with prefect_client(prefect["api_url"]) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def _schedule_runs(ref: str):
    from retrain.services.schedules import schedule_runs

    return schedule_runs(ref)


def _next_slot(zone: str, lead_s: int) -> tuple[dt.datetime, str]:
    """The first whole minute at least `lead_s` seconds from now: UTC instant, local HH:MM."""
    now = dt.datetime.now(dt.timezone.utc)
    slot = (now + dt.timedelta(seconds=lead_s + 59)).replace(second=0, microsecond=0)
    return slot, f"{slot.astimezone(ZoneInfo(zone)):%H:%M}"


def _far_from_now() -> tuple[int, str]:
    """(weekday, "HH:MM" UTC) 12 hours from now: a slot no test in this module reaches."""
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=12)
    return later.weekday(), f"{later:%H:%M}"


def test_automations_sync_is_idempotent(prefect):
    synced, again = prefect["automations"]
    assert [a.created for a in synced] == [True] * 6
    assert [a.created for a in again] == [False] * 6
    assert [a.id for a in again] == [a.id for a in synced]
    with prefect_client(prefect["api_url"]) as client:
        names = sorted(a.name for a in client.read_automations())
    assert names == sorted(a.name for a in synced)


def test_schedule_fires_at_its_slot_pauses_resumes_and_triggers(prefect):
    from retrain.domain.schedule.spec import ScheduleSpec
    from retrain.services import schedules as scheduling

    zone = "America/New_York"
    _model_with_template(prefect, "sched-good",
                         evaluator={"metrics": [{"class_name": "rmse", "upper_bound": 0.01}]})
    slot, wall = _next_slot(zone, lead_s=150)
    spec = ScheduleSpec(type="daily", time=wall, timezone=zone)
    view = scheduling.create_schedule(spec, model_name="sched-good")
    expected = [run.utc for run in scheduling.preview_schedule(spec, 5)]
    assert expected[0] == slot and view.next_run_at == slot
    assert view.deployment == "training-pipeline/schedule-sched-good"

    # The scheduler makes the runs our preview promised, in UTC.
    assert wait_for(lambda: _upcoming(prefect, view) == expected, 30,
                    what="5 scheduled runs at the previewed times")
    # Re-applying (a redeploy) keeps one deployment, one schedule, five runs.
    scheduling.sync_schedules()
    deployment = _deployment(prefect, view)
    assert [s.slug for s in deployment.schedules] == ["schedule-sched-good"]
    assert wait_for(lambda: _upcoming(prefect, view) == expected, 30, what="runs re-made")

    # Pause removes the scheduled runs and the scheduler makes none; resume brings them back.
    paused = scheduling.pause_schedule("sched-good")
    assert paused.status.value == "paused" and paused.next_run_at is None
    assert _deployment(prefect, view).paused
    assert _upcoming(prefect, view) == []
    with pytest.raises(AssertionError):  # three scheduler loops later: still nothing
        wait_for(lambda: _upcoming(prefect, view), 6, what="no runs while paused")
    # A paused schedule is not run by accident: trigger says it is paused, until --force.
    from retrain.services.errors import OperationRefused

    with pytest.raises(OperationRefused, match="is paused .*--force"):
        scheduling.trigger_schedule("sched-good")
    resumed = scheduling.resume_schedule("sched-good")
    assert resumed.status.value == "active" and resumed.next_run_at == slot
    assert wait_for(lambda: _upcoming(prefect, view) == expected, 30, what="runs after resume")

    # Trigger now starts a run at once, long before the slot.
    triggered = scheduling.trigger_schedule("sched-good")
    running = wait_for(lambda: _flow_run(prefect, triggered).start_time, 60,
                       what="the triggered run to start")
    assert running < slot - dt.timedelta(seconds=30)

    # The slot's run starts on time (by its worker, from the scheduler's run).
    def slot_run():
        return next((r for r in _flow_runs(prefect, view)
                     if r.expected_start_time == slot and r.start_time), None)
    fired = wait_for(slot_run, 300, interval=2, what="the slot's run to start")
    assert fired.auto_scheduled
    with prefect_client(prefect["api_url"]) as client:
        states = client.read_flow_run_states(fired.id)
    # The worker submits it on time (Pending; it looks 1 s ahead); the engine then takes a
    # while to boot.
    pending = min(s.timestamp for s in states if s.type.value == "PENDING")
    assert -dt.timedelta(seconds=2) <= pending - slot < dt.timedelta(seconds=15), (pending, slot)
    assert fired.start_time - slot < dt.timedelta(minutes=3)

    # Both runs train to the end; the model misses its impossible RMSE bound, so both
    # are not blessed (successful runs), and each sends a not-blessed notification.
    def finished():
        found = _schedule_runs("sched-good")
        return found if len(found) == 2 and all(r.status == "not_blessed" for r in found) \
            else None
    found = wait_for(finished, 600, interval=5, what="both schedule runs to finish")
    assert {r.flow_run_id for r in found} == {str(triggered), str(fired.id)}
    assert all(r.lateness_seconds is not None and r.lateness_seconds < 180 for r in found)
    stats = scheduling.get_schedule("sched-good")
    assert (stats.total_runs, stats.successful_runs, stats.failed_runs) == (2, 2, 0)
    assert stats.success_rate == 100.0
    assert stats.last_run_at == max(r.started_at.replace(tzinfo=dt.timezone.utc)
                                    for r in found)
    assert stats.next_run_at == slot + dt.timedelta(days=1)
    receiver = prefect["receiver"]
    for run in found:
        label = f"sched-good #{run.run_number}"
        assert wait_for(lambda: receiver.matching(label, "not blessed"), 60,
                        what=f"a not-blessed notification for {label}")


def test_failures_are_recorded_notified_and_pause_the_schedule(prefect, tmp_path):
    from retrain.domain.schedule.spec import ScheduleSpec
    from retrain.services import schedules as scheduling

    empty = tmp_path / "no-data"
    empty.mkdir()
    run_id = _model_with_template(prefect, "sched-bad", data=empty)
    weekday, time = _far_from_now()
    spec = ScheduleSpec(type="weekly", day_of_week=weekday, time=time)
    view = scheduling.create_schedule(spec, run_ref=run_id)
    flow_runs = [scheduling.trigger_schedule("sched-bad") for _ in range(3)]

    receiver = prefect["receiver"]

    def failed_notifications():
        found = [receiver.matching(f"sched-bad #{n}", "ExampleGen", "failed")
                 for n in (2, 3, 4)]
        return found if all(found) else None
    wait_for(failed_notifications, 420, interval=3,
             what="a failure notification naming each run and its stage")
    paused = wait_for(lambda: receiver.matching("sched-bad", "paused", "resume"), 120,
                      what="the circuit breaker's notification")
    assert "3 failed runs in a row" in paused[0]["text"]

    stats = scheduling.get_schedule("sched-bad")
    assert stats.status.value == "paused"
    assert stats.status_reason.startswith("paused after 3 failed runs in a row (#2, #3, #4)")
    assert (stats.total_runs, stats.failed_runs, stats.success_rate) == (3, 3, 0.0)
    assert _deployment(prefect, view).paused
    assert {r.flow_run_id for r in _schedule_runs("sched-bad")
            if r.status == "failed"} == {str(f) for f in flow_runs}
    assert all(r.error_stage == "ExampleGen" for r in _schedule_runs("sched-bad")
               if r.status == "failed")

    # Resuming from the CLI: active again, the failure streak starts afresh.
    cli = subprocess.run(
        [sys.executable, "-m", "flows.cli", "schedules", "resume", "sched-bad"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PREFECT_API_URL": prefect["api_url"]},
    )
    assert cli.returncode == 0, cli.stderr
    assert "status     active (resumed by user)" in cli.stdout
    resumed = scheduling.get_schedule("sched-bad")
    assert resumed.consecutive_failures == 0 and resumed.failed_runs == 3
    assert not _deployment(prefect, view).paused


def test_a_late_slot_is_skipped_and_recorded(prefect, tmp_path):
    from prefect.states import Scheduled

    from retrain.domain.schedule.spec import ScheduleSpec
    from retrain.services import schedules as scheduling

    _model_with_template(prefect, "sched-late")
    weekday, time = _far_from_now()
    spec = ScheduleSpec(type="weekly", day_of_week=weekday, time=time, timezone="UTC")
    view = scheduling.create_schedule(
        spec, model_name="sched-late",
        policy=scheduling.SchedulePolicy(max_lateness_minutes=30))
    # A slot two hours ago that never ran (the worker was down): it starts now.
    slot = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).replace(
        second=0, microsecond=0)
    with prefect_client(prefect["api_url"]) as client:
        flow_run = client.create_flow_run_from_deployment(
            _deployment(prefect, view).id, state=Scheduled(scheduled_time=slot))

    def skipped():
        found = [r for r in _schedule_runs("sched-late") if r.flow_run_id == str(flow_run.id)]
        return found[0] if found and found[0].status == "skipped" else None
    run = wait_for(skipped, 180, interval=2, what="the late run to be skipped")
    assert 7200 <= run.lateness_seconds < 7200 + 180
    assert "more than the 30 min the schedule allows" in run.error_message
    assert all(stage.status == "skipped" for stage in run.stages)
    state = wait_for(lambda: _flow_run(prefect, flow_run.id).state.is_final() and
                     _flow_run(prefect, flow_run.id).state, 60, what="final state")
    assert state.name == "Skipped" and state.is_completed()
    stats = scheduling.get_schedule("sched-late")
    assert (stats.skipped_runs, stats.total_runs) == (1, 0)


def test_bad_input_creates_nothing(prefect):
    from pydantic import ValidationError

    from retrain.domain.schedule.spec import ScheduleSpec
    from retrain.services import schedules as scheduling
    from retrain.services.errors import OperationRefused

    _model_with_template(prefect, "sched-none")
    with prefect_client(prefect["api_url"]) as client:
        before = sorted(d.name for d in client.read_deployments())

    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)).replace(second=0,
                                                                          microsecond=0)
    with pytest.raises(ValueError, match="is not in the future"):
        scheduling.create_schedule(ScheduleSpec(type="once", at=past), model_name="sched-none")
    with pytest.raises(LookupError, match="no registered model named 'nope'"):
        scheduling.create_schedule(ScheduleSpec(type="daily", time="10:00"), model_name="nope")
    with pytest.raises(LookupError, match="no Prefect deployment named 'training-pipeline/x'"):
        scheduling.create_schedule(ScheduleSpec(type="daily", time="10:00"),
                                   model_name="sched-none", base_deployment="training-pipeline/x")
    for bad in ({"type": "hourly", "minute": 17}, {"type": "daily", "time": "10:00",
                                                    "timezone": "Mars/Olympus"},
                {"type": "monthly", "time": "10:00", "day_of_month": 32}):
        with pytest.raises(ValidationError):
            ScheduleSpec(**bad)
    first = scheduling.create_schedule(ScheduleSpec(type="daily", time=_far_from_now()[1]),
                                       model_name="sched-none")
    with pytest.raises(OperationRefused, match=f"already has schedule {first.id}"):
        scheduling.create_schedule(ScheduleSpec(type="weekly", day_of_week=1, time="10:00"),
                                   model_name="sched-none")
    # Refusals on state, too: resuming an active schedule changes nothing.
    with pytest.raises(OperationRefused, match="only a schedule that is paused can be resumed"):
        scheduling.resume_schedule("sched-none")

    # From the CLI: exit 2 names the problem; nothing new in Prefect.
    for args, message in (
        (["--type", "hourly", "--minute", "17"], "minute must be one of 0, 15, 30, 45"),
        (["--type", "daily", "--time", "10:00", "--timezone", "Europe/Nowhere"],
         "unknown timezone 'Europe/Nowhere'"),
        (["--type", "monthly", "--time", "10:00", "--day-of-month", "32"], "day_of_month"),
    ):
        cli = subprocess.run(
            [sys.executable, "-m", "flows.cli", "schedules", "create", "--model", "sched-none",
             *args], cwd=REPO, capture_output=True, text=True, timeout=300,
            env={**os.environ, "PREFECT_API_URL": prefect["api_url"]})
        assert cli.returncode == 2 and message in cli.stderr, cli.stderr
    with prefect_client(prefect["api_url"]) as client:
        after = sorted(d.name for d in client.read_deployments())
    assert after == sorted([*before, "schedule-sched-none"])
    assert [v.model_name for v in scheduling.list_schedules()
            if v.model_name == "sched-none"] == ["sched-none"]
