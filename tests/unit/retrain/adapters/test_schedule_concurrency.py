"""A schedule's deployment limit: the base deployment's (the global limit), or one run at a
time with Prefect's ENQUEUE strategy for a config whose overlap policy is `queue`."""

from __future__ import annotations

from types import SimpleNamespace

from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions

from retrain.adapters.prefect_deployments import concurrency_of

BASE = SimpleNamespace(
    global_concurrency_limit=SimpleNamespace(limit=4),
    concurrency_options=ConcurrencyOptions(collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
)


def _args(base, overlap):
    return concurrency_of(base, {"overlap": overlap}, ConcurrencyLimitStrategy, ConcurrencyOptions)


def test_queue_runs_one_at_a_time_and_the_rest_wait_in_prefect():
    args = _args(BASE, "queue")
    assert args["concurrency_limit"] == 1
    assert args["concurrency_options"].collision_strategy is ConcurrencyLimitStrategy.ENQUEUE


def test_other_policies_keep_the_base_deployments_global_limit():
    for overlap in ("allow", "skip", "cancel"):
        args = _args(BASE, overlap)
        assert args["concurrency_limit"] == 4 and args["concurrency_options"] is BASE.concurrency_options


def test_a_base_without_a_limit_gives_none():
    base = SimpleNamespace(global_concurrency_limit=None, concurrency_options=None)
    assert _args(base, "allow") == {"concurrency_limit": None, "concurrency_options": None}
