"""Fixtures for whole-pipeline runs on tiny data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import prefect_services
import pytest

# Beam in one process: tiny data does not pay for worker start-up (each imports TensorFlow).
IN_MEMORY_BEAM = {"args": ["--direct_running_mode=in_memory"]}


@pytest.fixture(scope="session")
def in_memory_beam() -> dict:
    """Beam config for tiny data: the in-process DirectRunner."""
    return IN_MEMORY_BEAM


@pytest.fixture(scope="session")
def tiny_interactions(session_dir: Path) -> Path:
    """2,000 synthetic interactions as CSV, generated once per session."""
    from synthetic.config import SyntheticConfig
    from synthetic.core import generate

    return generate(SyntheticConfig(rows=2_000, seed=7), session_dir / "data" / "tiny").out_dir


@pytest.fixture(autouse=True)
def _fresh_settings():
    """Settings are cached per process; tests that change RETRAIN_* see a fresh read."""
    from retrain.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def prefect_server(session_dir: Path) -> Iterator[str]:
    """A real `prefect server start` (own SQLite database, scheduler and other services
    running) for worker, schedule and automation tests; yields its API URL."""
    with prefect_services.prefect_server(session_dir / "prefect-server") as api_url:
        yield api_url


@pytest.fixture(scope="session")
def kubernetes_prefect_server(session_dir: Path) -> Iterator[str]:
    """A `prefect server start` for Kubernetes work-pool tests: its CANCELLING timeout is
    5 s, not the default 300 s. Prefect 3.8.8's Kubernetes worker deletes the Job of a
    cancelled run whose pod never started only when that timeout passes (the server marks
    the run Cancelled and queues a teardown the worker carries out)."""
    settings = {"PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_CANCELLING_TIMEOUT_SECONDS": "5"}
    with prefect_services.prefect_server(session_dir / "prefect-server-kube", settings) as url:
        yield url


@pytest.fixture(scope="session")
def gcs_emulator(session_dir: Path):
    """A GCS API on loopback (gcs_emulator.py) with the buckets `retrain-data` and
    `retrain-pipelines`, in its own process for the whole session."""
    from gcs_emulator import GcsEmulator

    with GcsEmulator(["retrain-data", "retrain-pipelines"],
                     session_dir / "gcs-emulator") as emulator:
        yield emulator
