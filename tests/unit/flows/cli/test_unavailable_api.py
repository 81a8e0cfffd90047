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


@pytest.fixture
def busy_api():
    """An HTTP server answering every request as Prefect's SQLite server does when its
    database is locked; yields (api_url, request count)."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(self.path)
            body = json.dumps({"exception_message": "database is locked"}).encode()
            self.send_response(503)
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
        yield f"http://127.0.0.1:{server.server_address[1]}/api", seen
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


def test_a_503_is_retried_then_reported_in_one_line(tmp_path, busy_api):
    api_url, seen = busy_api
    result = _cli(tmp_path, api_url, "runs", "reconcile")
    assert result.returncode == 5
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert line.startswith(f"unavailable: Prefect API at {api_url} answered 503 Service Unavailable")
    assert "after every retry" in line and "database is locked" in line
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
