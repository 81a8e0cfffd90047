"""Test session set-up: every service and store lives in a per-session temp directory.

Prefect reads its settings when it is first imported, so the environment is set here,
before any test module imports Prefect.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="retrain-tests-"))
os.environ.update(
    {
        "PREFECT_HOME": str(_SESSION_DIR / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "RETRAIN_HOME": str(_SESSION_DIR / "home"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
)

import pytest  # noqa: E402

from postgres_server import pg_admin, pg_bindir, postgres_server  # noqa: E402


@pytest.fixture(scope="session")
def session_dir() -> Path:
    """Root of everything this test session writes."""
    return _SESSION_DIR


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API (SQLite) for flows under test."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=None):
        yield


# --- A real PostgreSQL server, started once per session -------------------------------------

@pytest.fixture(scope="session")
def postgres_url(session_dir: Path):
    """A throwaway PostgreSQL 15 server on loopback: yields the SQLAlchemy URL of its
    `retrain` database (postgresql+psycopg://retrain@127.0.0.1:<port>/retrain).

    Skipped only where no PostgreSQL binaries exist at all, and never when CI is set.
    """
    if pg_bindir() is None:
        reason = "no PostgreSQL binaries (initdb, pg_ctl, postgres) found"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the service tests", pytrace=False)
        pytest.skip(reason)
    with postgres_server(session_dir / "postgres") as url:
        yield url


@pytest.fixture
def postgres_db(postgres_url: str):
    """A fresh, empty database on the session's PostgreSQL server; yields its URL and drops
    it after the test."""
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    name = f"test_{uuid.uuid4().hex[:16]}"
    with pg_admin(url.port) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with pg_admin(url.port) as conn:
        # FORCE: a connection the test leaked must not keep the database alive.
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
