"""The embedded default's long-lived Prefect server (`make demo`): started in the background
when none answers, reused when one does, stopped by `prefect server stop`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from prefect_services import free_port, wait_for

from retrain.adapters.local_server import LocalServerError, answers, ensure_local_server

pytestmark = [pytest.mark.service]


def _prefect(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(home)
    return subprocess.run([str(Path(sys.executable).with_name("prefect")), *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_started_once_reused_then_stopped_by_prefect_server_stop(tmp_path):
    home, port = tmp_path / "prefect", free_port()
    first = ensure_local_server(home, port)
    try:
        assert first.started and first.api_url == f"http://127.0.0.1:{port}/api"
        assert answers(first.api_url) and (home / "server.pid").is_file()
        # the process that started it may exit: the server stays (its own session)
        pid = int((home / "server.pid").read_text())
        assert os.getsid(pid) == pid
        again = ensure_local_server(home, port)
        assert not again.started and again.seconds == 0.0
    finally:
        stopped = _prefect(home, "server", "stop")
    assert stopped.returncode == 0 and "Server stopped" in stopped.stdout, stopped.stdout
    assert not (home / "server.pid").exists()
    wait_for(lambda: not answers(first.api_url, timeout_s=1.0), timeout=60)


def test_a_port_taken_by_something_else_is_one_clear_error(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(LocalServerError, match=rf"port {port} on 127.0.0.1 is taken by "
                           "something that is not a Prefect server: .*RETRAIN_LOCAL_SERVER_PORT"):
            ensure_local_server(tmp_path / "prefect", port, wait_s=5)
    assert not (tmp_path / "prefect" / "server.pid").exists()
