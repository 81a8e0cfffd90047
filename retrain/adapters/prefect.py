"""The one way retrain opens a Prefect client: synchronous, on the configured server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

NO_SERVER = (
    "schedules need a running Prefect server (its scheduler starts the runs): set "
    "PREFECT_API_URL, e.g. http://127.0.0.1:4200/api after `prefect server start`")


@contextmanager
def prefect_client(require_server: bool = False) -> Iterator[SyncPrefectClient]:
    """A synchronous Prefect client, closed on exit.

    With `require_server`, a missing PREFECT_API_URL is a LookupError instead of Prefect's
    ephemeral in-process server (which has no scheduler and forgets everything on exit).
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    if require_server and not PREFECT_API_URL.value():
        raise LookupError(NO_SERVER)
    with get_client(sync_client=True) as client:
        yield client
