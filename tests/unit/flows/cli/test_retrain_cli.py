"""`retrain` CLI over a real store: listing with the stage bar, one run, names, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from retrain.store import runs
from retrain.store.database import session_maker
from retrain.store.migrate import upgrade
from retrain.domain.status import RunStatus, StageStatus

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture
def store(tmp_path) -> str:
    """A store with one failed and one finished run of `ranker`."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    upgrade(url)
    with session_maker(url).begin() as session:
        failed = runs.create_run(session, "ranker", {"epochs": 2}, model_type="ranking")
        runs.set_status(session, failed.id, RunStatus.RUNNING)
        runs.record_stage(session, failed.id, "ExampleGen", StageStatus.CACHED, seconds=0.0)
        runs.record_stage(session, failed.id, "StatisticsGen", StageStatus.FAILED, seconds=1.5,
                          message="label column 'ratng' not in the data")
        runs.set_status(session, failed.id, RunStatus.FAILED, error_stage="StatisticsGen",
                        error_message="StatisticsGen failed: label column 'ratng' not in the data")
        done = runs.create_run(session, "ranker", {"epochs": 2})
        runs.set_status(session, done.id, RunStatus.RUNNING)
        runs.record_epoch(session, done.id, 1, 2, {"loss": 0.9})
        runs.record_epoch(session, done.id, 2, 2, {"loss": 0.7})
        runs.set_status(session, done.id, RunStatus.COMPLETED, metrics={"rmse": 0.81},
                        blessed=True, registered_version="1")
    return url


def _cli(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RETRAIN_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120)


def test_list_shows_each_run_with_its_eight_segment_stage_bar(store):
    result = _cli(store, "runs", "list", "--model", "ranker")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[1:-1]  # between the header and the legend
    assert len(rows) == 2  # newest first: run 2, then run 1
    assert " 2  completed " in rows[0] and "[........]" in rows[0]
    assert " 1  failed " in rows[1] and "[=X......]" in rows[1]
    only_failed = _cli(store, "runs", "list", "--status", "failed").stdout.splitlines()[1:-1]
    assert len(only_failed) == 1 and " failed " in only_failed[0]


def test_show_prints_stages_error_epochs_and_blessing(store):
    with session_maker(store)() as session:
        failed, done = sorted(runs.list_runs(session), key=lambda r: r.run_number)
    shown = _cli(store, "runs", "show", failed.id)
    assert shown.returncode == 0, shown.stderr
    assert "ranker #1  (ranker)  failed" in shown.stdout
    assert "StatisticsGen: StatisticsGen failed: label column 'ratng'" in shown.stdout
    done_out = _cli(store, "runs", "show", done.id).stdout
    assert "rmse = 0.8100" in done_out and "blessed  True" in done_out
    assert "0.9000" in done_out and "0.7000" in done_out  # the epoch table


def test_show_lists_trainer_attempts_and_the_devices_seen(store):
    from retrain.domain.refs import TrainerAttempt

    with session_maker(store).begin() as session:
        run = runs.create_run(session, "ranker", {"epochs": 4})
        runs.record_attempt(session, run.id, TrainerAttempt(
            number=1, gpu_type="nvidia-tesla-t4", gpu_count=4, outcome="unschedulable",
            reason="pod unschedulable for 600 s: Unschedulable.NodeAffinity"))
        runs.record_attempt(session, run.id, TrainerAttempt(
            number=2, gpu_type="nvidia-l4", gpu_count=4, outcome="interrupted",
            reason="No active or succeeded pods found for any job"))
        runs.record_attempt(session, run.id, TrainerAttempt(
            number=3, gpu_type="nvidia-l4", gpu_count=4, outcome="succeeded",
            resumed_from_epoch=2))
        runs.record_trainer_devices(session, run.id, "MirroredStrategy", 4,
                                    [f"/physical_device:GPU:{i}" for i in range(4)])
        run_id = run.id
    shown = _cli(store, "runs", "show", run_id).stdout
    assert "trainer  MirroredStrategy, 4 replica(s); GPUs seen: /physical_device:GPU:0," in shown
    assert ("attempt  #1 4×nvidia-tesla-t4 unschedulable: pod unschedulable for 600 s: "
            "Unschedulable.NodeAffinity") in shown
    assert "attempt  #2 4×nvidia-l4 interrupted: No active or succeeded pods" in shown
    assert "attempt  #3 4×nvidia-l4 succeeded, resumed after epoch 2" in shown


def test_unknown_run_id_exits_2_naming_it(store):
    result = _cli(store, "runs", "show", "no-such-run")
    assert result.returncode == 2
    assert "no training run with id 'no-such-run'" in result.stderr


def test_check_name_free_taken_and_invalid(store):
    assert _cli(store, "models", "check-name", "new-model").returncode == 0
    taken = _cli(store, "models", "check-name", "ranker")
    assert taken.returncode == 3 and "taken (2 runs)" in taken.stdout
    invalid = _cli(store, "models", "check-name", "Bad Name")
    assert invalid.returncode == 2 and "must be 1-63 chars" in invalid.stderr


def test_db_upgrade_reports_the_revision(tmp_path):
    result = _cli(f"sqlite:///{tmp_path / 'fresh.db'}", "db", "upgrade")
    assert result.returncode == 0 and "revision 0007" in result.stdout


def test_schedule_preview_shows_both_zones_and_the_dst_note(store):
    result = _cli(store, "schedules", "preview", "--type", "daily", "--time", "02:30",
                  "--timezone", "Europe/Warsaw", "--count", "400")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Daily at 02:30 (Europe/Warsaw)"
    assert len(lines) == 401
    # The spring-forward day: 02:30 does not exist and the run comes an hour early.
    (spring,) = [line for line in lines if "2027-03-28" in line]
    assert "Sun 2027-03-28 01:30 CET   2027-03-28 00:30 UTC" in spring
    assert "clocks go forward 02:00→03:00 in Europe/Warsaw" in spring


@pytest.mark.parametrize("args, message", [
    (["--type", "hourly", "--minute", "17"], "minute: minute must be one of 0, 15, 30, 45"),
    (["--type", "daily", "--time", "9:00"], "time must be HH:MM"),
    (["--type", "weekly", "--time", "09:00"], "a weekly schedule needs day_of_week"),
    (["--type", "monthly", "--time", "09:00", "--day-of-month", "32"], "day_of_month"),
    (["--type", "daily", "--time", "09:00", "--timezone", "CEST"], "unknown timezone 'CEST'"),
    (["--type", "once", "--at", "2020-02-29 10:00"], "is not in the future"),
    (["--type", "once", "--at", "2027-03-28 02:30", "--timezone", "Europe/Warsaw"],
     "does not exist in Europe/Warsaw"),
])
def test_bad_schedules_exit_2_naming_the_problem(store, args, message):
    for command in ("preview", "create"):
        extra = ["--model", "ranker"] if command == "create" else []
        result = _cli(store, "schedules", command, *extra, *args)
        assert result.returncode == 2 and message in result.stderr, (command, result.stderr)
    with session_maker(store)() as session:  # nothing was recorded
        from retrain.store import schedules

        assert schedules.list_schedules(session) == []


def test_schedules_need_a_prefect_server(store):
    env_free = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "schedules", "create", "--model", "ranker",
         "--type", "daily", "--time", "09:00"], capture_output=True, text=True, cwd=REPO,
        env={**env_free, "RETRAIN_DATABASE_URL": store}, timeout=120)
    assert result.returncode == 2 and "schedules need a running Prefect server" in result.stderr
