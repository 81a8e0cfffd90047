"""The late-run policy: a scheduled run too long after its slot is skipped, with the reason."""

from __future__ import annotations

import datetime as dt

import pytest

from retrain.domain.schedule.slots import check_slot

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
