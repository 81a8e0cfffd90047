"""The schedule rules applied to runs: a scheduled run too long after its slot is skipped, with
the reason; statistics are recounted from the runs; the circuit breaker pauses a schedule."""

from __future__ import annotations

import datetime as dt

import pytest

from retrain.domain.schedule.rules import breaker_trips, check_slot, pause_reason, statistics
from retrain.domain.status import RunStatus as R
from retrain.domain.status import ScheduleStatus as S

UTC = dt.timezone.utc
SLOT = dt.datetime(2027, 3, 28, 0, 30, tzinfo=UTC)


def test_runs_without_a_schedule_always_go_ahead():
    assert check_slot(None, SLOT, 3600).skip is False
    assert check_slot(SLOT, SLOT + dt.timedelta(days=3), None).skip is False


def test_a_run_at_the_limit_runs_and_one_second_more_is_skipped():
    on_limit = check_slot(SLOT, SLOT + dt.timedelta(hours=1), 3600)
    assert (on_limit.skip, on_limit.lateness_seconds) == (False, 3600.0)
    late = check_slot(SLOT, SLOT + dt.timedelta(hours=1, seconds=1), 3600)
    assert late.skip is True and late.lateness_seconds == 3601.0
    assert late.reason == (
        "skipped: started 1 h 0 min after its slot 2027-03-28 00:30 UTC, more than the "
        "1 h 0 min the schedule allows; the next slot runs as usual")


def test_lateness_is_measured_in_utc_whatever_the_zones():
    warsaw = dt.timezone(dt.timedelta(hours=2))
    verdict = check_slot(SLOT.astimezone(warsaw), SLOT + dt.timedelta(minutes=45), 1800)
    assert verdict.skip and verdict.lateness_seconds == 2700.0
    assert "45 min after its slot 2027-03-28 00:30 UTC, more than the 30 min" in verdict.reason


def test_a_run_started_early_is_zero_late():
    assert check_slot(SLOT, SLOT - dt.timedelta(seconds=5), 60).lateness_seconds == 0.0


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="started must be timezone-aware"):
        check_slot(SLOT, SLOT.replace(tzinfo=None), 60)
    with pytest.raises(ValueError, match="slot must be timezone-aware"):
        check_slot(SLOT.replace(tzinfo=None), SLOT, 60)


def test_scheduler_runs_of_a_paused_schedule_are_skipped_but_manual_ones_run():
    paused = check_slot(SLOT, SLOT, 3600, schedule_status="paused", auto_scheduled=True)
    assert paused.skip and paused.reason == "skipped: the schedule is paused"
    by_hand = check_slot(SLOT, SLOT, 3600, schedule_status="paused", auto_scheduled=False)
    assert not by_hand.skip


# --- statistics and the circuit breaker (pure rules the store and the failure flow apply) -----

def _at(hours: int) -> dt.datetime:
    return SLOT + dt.timedelta(hours=hours)


def test_the_failure_streak_counts_newest_finished_runs_since_the_last_status_change():
    newest_first = [(R.RUNNING, _at(6)), (R.FAILED, _at(5)), (R.SKIPPED, _at(4)),
                    (R.CRASHED, _at(3)), (R.COMPLETED, _at(2)), (R.FAILED, _at(1))]
    counted = statistics(newest_first, since=None)
    assert (counted.total_runs, counted.successful_runs, counted.failed_runs,
            counted.skipped_runs, counted.consecutive_failures) == (4, 1, 3, 1, 2)
    assert counted.last_run_at == _at(6)
    assert statistics(newest_first, since=_at(4)).consecutive_failures == 1  # resumed at 4


def test_the_breaker_trips_at_the_limit_of_an_active_schedule_and_names_the_runs():
    assert breaker_trips(S.ACTIVE, 3, 3) and not breaker_trips(S.ACTIVE, 2, 3)
    assert not breaker_trips(S.PAUSED, 5, 3) and not breaker_trips(S.ACTIVE, 5, 0)
    runs = [(9, R.FAILED), (8, R.CRASHED), (7, R.COMPLETED), (6, R.FAILED)]
    assert pause_reason(runs, 2, "Transform", "column missing") == (
        "paused after 2 failed runs in a row (#8, #9); last error at Transform: column missing")
    assert "at an unknown stage: None" in pause_reason(runs, 1, None, None)
