"""The one way retrain opens a Prefect client: synchronous, on the configured server, with
retries on a busy server and one clear error when it gives up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

NO_SERVER = (
    "schedules need a running Prefect server (its scheduler starts the runs): set "
    "PREFECT_API_URL, e.g. http://127.0.0.1:4200/api after `prefect server start`")
# Answers a busy server gives: Prefect's SQLite mode answers 503 for "database is locked";
# on PostgreSQL a statement or pool timeout on an overloaded server answers 500.
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class PrefectUnavailable(ConnectionError):
    """The Prefect API could not be reached, or kept answering a transient error after every
    retry; the message names the server and the last error."""


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or "Prefect's ephemeral server"


def unavailable(exc: BaseException) -> PrefectUnavailable | None:
    """`exc` as PrefectUnavailable if it says the server is down or overloaded, else None."""
    import httpx

    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in TRANSIENT_STATUS:
        detail = exc.response.text.strip().replace("\n", " ")[:200]
        return PrefectUnavailable(
            f"Prefect API at {_api_url()} answered {exc.response.status_code} "
            f"{exc.response.reason_phrase} to {exc.request.method} {exc.request.url.path} "
            f"after every retry" + (f": {detail}" if detail else ""))
    if isinstance(exc, httpx.TransportError):
        return PrefectUnavailable(f"Prefect API at {_api_url()} could not be reached: "
                                  f"{type(exc).__name__}: {exc}")
    return None


@contextmanager
def api_retries() -> Iterator[None]:
    """Prefect clients opened inside (ours, and Prefect's own in `run_deployment`) retry a
    transient error RETRAIN_API_RETRIES times (or PREFECT_CLIENT_MAX_RETRIES, if higher),
    500 included (Prefect's client retries it only when told: PREFECT_CLIENT_RETRY_EXTRA_CODES);
    an error that outlasts them leaves as `PrefectUnavailable`."""
    from prefect.settings import (
        PREFECT_CLIENT_MAX_RETRIES,
        PREFECT_CLIENT_RETRY_EXTRA_CODES,
        temporary_settings,
    )

    from retrain.settings import get_settings

    retries = max(PREFECT_CLIENT_MAX_RETRIES.value(), get_settings().api_retries)
    codes = set(PREFECT_CLIENT_RETRY_EXTRA_CODES.value()) | {500}
    with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: retries,
                             PREFECT_CLIENT_RETRY_EXTRA_CODES: codes}):
        try:
            yield
        except Exception as exc:
            error = unavailable(exc)
            if error is None:
                raise
            raise error from exc


@contextmanager
def prefect_client(require_server: bool = False) -> Iterator[SyncPrefectClient]:
    """A synchronous Prefect client, closed on exit.

    Its requests are retried on 429/500/502/503/504 and on dropped connections with exponential
    backoff, `RETRAIN_API_RETRIES` times (Prefect's own client retries 5 times by default;
    20 flow runs on the SQLite server got 503s past that). When it gives up, the error is a
    `PrefectUnavailable` naming the server. With `require_server`, a missing
    PREFECT_API_URL is a LookupError instead of Prefect's ephemeral in-process server
    (which has no scheduler and forgets everything on exit).
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    if require_server and not PREFECT_API_URL.value():
        raise LookupError(NO_SERVER)
    with api_retries(), get_client(sync_client=True) as client:
        yield client


def cancel_task_runs(flow_run_id: Any, message: str) -> int:
    """Mark the task runs a cancelled flow run left unfinished, or that ended Crashed when
    its process was stopped, Cancelled (their flow run's own outcome); returns how many.

    Cancelling a run from the UI stops its process; the stage running then is reported
    Crashed by the dying engine or, when the server gets there first, Cancelled. This makes
    it Cancelled either way, so the run view says what happened to it."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled

    changed = 0
    with prefect_client() as client:
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        for task_run in task_runs:
            state = task_run.state
            if state is None or (state.is_final() and state.type != StateType.CRASHED):
                continue
            client.set_task_run_state(task_run.id, Cancelled(message=message), force=True)
            changed += 1
    return changed
