"""The embedded default's Prefect server: one long-lived `prefect server start` on loopback,
started in the background by the first run that needs it and reused by every later one, so
no run pays a server start and the UI stays up to look at.

It keeps its database under PREFECT_HOME (.retrain/prefect with `make`), writes its log to
`<PREFECT_HOME>/server.log` and its process id to `<PREFECT_HOME>/server.pid`, the file
`prefect server stop` reads: that command (or `make stop`) stops it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PID_FILE = "server.pid"  # prefect.cli._server_utils.SERVER_PID_FILE_NAME: `prefect server stop`
LOG_FILE = "server.log"


class LocalServerError(ConnectionError):
    """The local server could not be started or reached; the message says why and what to do."""


@dataclass(frozen=True)
class LocalServer:
    """Where the local server answers, and whether this call started it."""

    api_url: str
    ui_url: str
    started: bool
    seconds: float
    log: Path

    def started_note(self) -> str | None:
        """What to tell the user when this call started the server; None when it was up."""
        if not self.started:
            return None
        return (f"started Prefect's server in the background in {self.seconds:.0f} s (log "
                f"{self.log}); later runs reuse it; `make stop` stops it")


def answers(api_url: str, timeout_s: float = 2.0) -> bool:
    """Whether a Prefect API answers its health check at `api_url`."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout_s) as reply:
            return reply.status == 200 and reply.read().strip() == b"true"
    except OSError:
        return False


def _port_taken(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def ensure_local_server(home: Path, port: int, wait_s: float = 180.0) -> LocalServer:
    """The Prefect server at 127.0.0.1:`port`: the one already answering there, else a new
    one started in the background (detached: it outlives this process) with `home` as its
    PREFECT_HOME, once it answers."""
    api_url, ui_url = f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}"
    home.mkdir(parents=True, exist_ok=True)
    log = home / LOG_FILE
    if answers(api_url):
        return LocalServer(api_url, ui_url, started=False, seconds=0.0, log=log)
    if _port_taken(port):
        raise LocalServerError(
            f"port {port} on 127.0.0.1 is taken by something that is not a Prefect server: "
            "stop it, or set RETRAIN_LOCAL_SERVER_PORT to a free port")
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    prefect = Path(sys.executable).with_name("prefect")
    started = time.monotonic()
    with log.open("ab") as out:
        server = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)  # not stopped by this process's Ctrl-C or exit
    (home / PID_FILE).write_text(str(server.pid))
    while time.monotonic() - started < wait_s:
        if server.poll() is not None:
            (home / PID_FILE).unlink(missing_ok=True)
            raise LocalServerError(f"the local Prefect server exited at start (code "
                                   f"{server.returncode}); its log: {log}")
        if answers(api_url):
            return LocalServer(api_url, ui_url, started=True,
                               seconds=time.monotonic() - started, log=log)
        time.sleep(0.5)
    server.terminate()
    (home / PID_FILE).unlink(missing_ok=True)
    raise LocalServerError(f"the local Prefect server did not answer within {wait_s:.0f} s; "
                           f"its log: {log}")


@contextlib.contextmanager
def runs_api(ephemeral: bool = False) -> Iterator[LocalServer | None]:
    """Prefect's API for the flow runs this process runs (the demo, `retrain runs start`):
    PREFECT_API_URL when set (yields None); else the embedded default's long-lived server,
    started now if none answers (yields it), so the Prefect UI shows the run; with
    `ephemeral`, Prefect's temporary in-process server (yields None: nothing stays up)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from retrain.settings import get_settings

    if ephemeral or PREFECT_API_URL.value():
        yield None
        return
    # `make` sets PREFECT_HOME=.retrain/prefect; a bare `retrain` gets the same place.
    home = os.environ.get("PREFECT_HOME") or get_settings().home / "prefect"
    server = ensure_local_server(Path(home).absolute(), get_settings().local_server_port)
    os.environ["PREFECT_API_URL"] = server.api_url  # for processes this run starts
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield server


def run_view(flow_run_id: object) -> str | None:
    """The Prefect UI's page of a flow run on the API in use; None on the ephemeral one."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    if not PREFECT_API_URL.value() or not PREFECT_UI_URL.value():
        return None
    return f"{PREFECT_UI_URL.value().rstrip('/')}/runs/flow-run/{flow_run_id}"
