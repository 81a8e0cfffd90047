"""A busy or absent Prefect API: retried, then one line naming the server, exit code 5."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from retrain.store.migrate import upgrade

REPO = Path(__file__).resolve().parents[3]


# What Prefect's server answers when busy: on SQLite, 503 for a locked database; on
# PostgreSQL, 500 for a statement that outlived PREFECT_SERVER_DATABASE_TIMEOUT.
BUSY = {503: ("Service Unavailable", "database is locked"),
        500: ("Internal Server Error", "Internal Server Error")}


@pytest.fixture(params=sorted(BUSY))
def busy_api(request):
    """An HTTP server answering every request as Prefect's server does when it is busy;
    yields (api_url, request count, status)."""
    seen = []
    status = request.param

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(self.path)
            body = json.dumps({"exception_message": BUSY[status][1]}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = _answer  # noqa: N815 (http.server's naming)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", seen, status
    finally:
        server.shutdown()
        server.server_close()


def _cli(tmp_path, api_url: str, *args: str, retries: str = "2") -> subprocess.CompletedProcess:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    upgrade(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(RETRAIN_DATABASE_URL=url, PREFECT_API_URL=api_url, RETRAIN_API_RETRIES=retries,
               PREFECT_CLIENT_MAX_RETRIES="0", PREFECT_CLIENT_RETRY_JITTER_FACTOR="0",
               PREFECT_HOME=str(tmp_path / "prefect"))
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120)


def test_a_busy_server_is_retried_then_reported_in_one_line(tmp_path, busy_api):
    api_url, seen, status = busy_api
    result = _cli(tmp_path, api_url, "runs", "reconcile")
    assert result.returncode == 5
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip()
    reason, detail = BUSY[status]
    assert line.startswith(f"unavailable: Prefect API at {api_url} answered {status} {reason}")
    assert "after every retry" in line and detail in line
    assert len(seen) == 3  # the first try and RETRAIN_API_RETRIES=2 retries


def test_an_unreachable_api_is_named_in_one_line(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _cli(tmp_path, f"http://127.0.0.1:{port}/api", "runs", "reconcile", retries="0")
    assert result.returncode == 5 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(
        f"unavailable: Prefect API at http://127.0.0.1:{port}/api could not be reached: Connect")
