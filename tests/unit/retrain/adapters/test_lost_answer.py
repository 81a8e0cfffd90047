"""A trigger whose answer is lost makes one flow run, not two.

A proxy in front of a real Prefect API (the test harness) passes the first
`create_flow_run` request on, lets the server make the run, and answers the client 500 as
Prefect's server on an overloaded PostgreSQL does; the client retries (500 is retried
inside `api_retries`) and the idempotency key makes the server return the run it made.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest


@pytest.fixture
def lossy_proxy(prefect_harness):
    """(proxy API URL, answers): forwards to the harness's API; the first POST to a
    create_flow_run path is passed on but answered 500."""
    from prefect.settings import PREFECT_API_URL

    upstream = PREFECT_API_URL.value().rstrip("/")
    answers: list[tuple[str, int]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.removeprefix("/api")
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in {"host", "content-length", "accept-encoding"}}
            reply = httpx.request(self.command, upstream + path, content=body,
                                  headers=headers, timeout=30)
            status, content = reply.status_code, reply.content
            with lock:
                first = not any(p.endswith("/create_flow_run") for p, _ in answers)
                if self.command == "POST" and path.endswith("/create_flow_run") and first:
                    status, content = 500, b'{"exception_message":"Internal Server Error"}'
                answers.append((path, status))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PATCH = do_DELETE = _forward  # noqa: N815 (http.server's naming)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", answers
    finally:
        server.shutdown()
        server.server_close()


def test_a_retried_trigger_after_a_lost_answer_makes_one_flow_run(lossy_proxy):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_CLIENT_RETRY_JITTER_FACTOR,
        temporary_settings,
    )

    from retrain.adapters.prefect import prefect_client
    from retrain.adapters.prefect_deployments import run_now

    with get_client(sync_client=True) as direct:
        flow_id = direct.create_flow_from_name("lost-answer")
        deployment_id = direct.create_deployment(flow_id=flow_id, name="lost-answer")

    proxy_url, answers = lossy_proxy
    with temporary_settings({PREFECT_API_URL: proxy_url, PREFECT_CLIENT_RETRY_JITTER_FACTOR: 0}):
        with prefect_client() as client:
            flow_run_id = run_now(client, deployment_id)

    creates = [status for path, status in answers if path.endswith("/create_flow_run")]
    # The answer was lost once; the retry was answered 200 with the run already made.
    assert creates == [500, 200]
    with get_client(sync_client=True) as direct:
        made = direct.read_flow_runs(deployment_filter=DeploymentFilter(
            id=DeploymentFilterId(any_=[deployment_id])))
    assert [run.id for run in made] == [flow_run_id]
