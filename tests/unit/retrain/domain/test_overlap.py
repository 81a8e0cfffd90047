"""The overlap policy's decisions, as a pure function of the model's other active runs."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from retrain.domain.overlap import (
    ActiveRun,
    OverlapAction,
    OverlapPolicy,
    alive,
    decide,
)


def _active(number: int, admitted: bool) -> ActiveRun:
    return ActiveRun(run_number=number, admitted=admitted)


@pytest.mark.parametrize("policy", list(OverlapPolicy))
def test_a_model_with_nothing_else_active_always_goes(policy):
    assert decide(policy, "m", 3, []).action is OverlapAction.GO
    assert decide(policy, "m", 3, [_active(3, False)]).action is OverlapAction.GO  # itself


def test_allow_goes_beside_active_runs():
    assert decide(OverlapPolicy.ALLOW, "m", 5, [_active(4, True)]).action is OverlapAction.GO


@pytest.mark.parametrize("policy,action,verb", [
    (OverlapPolicy.SKIP, OverlapAction.SKIP, "skipped"),
    (OverlapPolicy.CANCEL, OverlapAction.CANCEL, "cancelled"),
])
def test_skip_and_cancel_give_way_to_an_admitted_run_and_name_it(policy, action, verb):
    verdict = decide(policy, "ranker", 7, [_active(9, True), _active(8, False)])
    assert verdict.action is action and verdict.blocking == [9]
    assert verdict.reason == f"{verb} by the overlap policy '{policy.value}': run #9 of ranker is active"


@pytest.mark.parametrize("policy", [OverlapPolicy.SKIP, OverlapPolicy.CANCEL])
def test_skip_and_cancel_wait_while_earlier_runs_are_still_deciding(policy):
    verdict = decide(policy, "ranker", 7, [_active(5, False), _active(8, False)])
    assert verdict.action is OverlapAction.WAIT and verdict.blocking == [5]


def test_the_lowest_undecided_run_goes_first():
    assert decide(OverlapPolicy.SKIP, "m", 5, [_active(6, False), _active(7, False)]).action \
        is OverlapAction.GO


def test_queue_waits_behind_admitted_and_earlier_runs_in_order():
    verdict = decide(OverlapPolicy.QUEUE, "m", 6, [_active(9, True), _active(4, False),
                                                   _active(8, False)])
    assert verdict.action is OverlapAction.WAIT and verdict.blocking == [4, 9]
    assert verdict.reason == "queued by the overlap policy 'queue': runs #4, #9 of m are active"


def test_liveness_is_the_last_heartbeat_else_the_start():
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)
    minute = dt.timedelta(minutes=1)
    assert alive(now - minute, now - 60 * minute, now, timeout_seconds=90)
    assert not alive(now - 2 * minute, now - 60 * minute, now, timeout_seconds=90)
    assert alive(None, now - minute, now, timeout_seconds=90)
    assert not alive(None, None, now, timeout_seconds=90)
    naive = (now - minute).replace(tzinfo=None)  # SQLite hands back naive UTC
    assert alive(naive, None, now, timeout_seconds=90)


def test_the_run_config_names_the_policy_and_refuses_others():
    from retrain.domain.examples import recommender_config

    config = recommender_config("/data", "ranking", overlap="skip")
    assert config.overlap is OverlapPolicy.SKIP
    assert config.snapshot()["overlap"] == "skip"
    assert recommender_config("/data", "ranking").overlap is OverlapPolicy.ALLOW
    with pytest.raises(ValidationError, match="overlap"):
        recommender_config("/data", "ranking", overlap="sometimes")
