"""Test session set-up: every service and store lives in a per-session temp directory.

Prefect reads its settings when it is first imported, so the environment is set here,
before any test module imports Prefect.
"""

from __future__ import annotations

import os
import tempfile
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
