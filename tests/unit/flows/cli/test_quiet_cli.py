"""A quiet terminal: an unreachable state store or MLflow server, and an unexpected error,
each print one line (secrets masked) and no traceback; `--verbose` shows the traceback."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from retrain.settings import get_settings
from retrain.store import runs
from retrain.store.database import session_maker
from retrain.store.migrate import upgrade

REPO = Path(__file__).resolve().parents[4]


def _closed_port() -> int:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "RETRAIN_HOME": str(tmp_path / "home"), **env}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True,
                          text=True, env=environment, cwd=REPO, timeout=120)


def test_an_unreachable_state_store_is_named_in_one_line_with_its_password_masked(tmp_path):
    port = _closed_port()
    url = f"postgresql+psycopg://retrain:s3cret-pw@127.0.0.1:{port}/retrain"
    result = _cli(tmp_path, "runs", "list", RETRAIN_DATABASE_URL=url)
    assert result.returncode == 5, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"unavailable: state store at postgresql+psycopg://retrain:***@127.0.0.1:{port}/retrain "
        f"could not be reached: connection failed")
    assert "Connection refused" in result.stderr and "s3cret-pw" not in result.stderr


def test_an_unreachable_mlflow_server_is_named_in_one_line_with_its_token_masked(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    upgrade(url)
    with session_maker(url).begin() as session:
        runs.create_run(session, "ranker", {}, model_type="ranking")
    port = _closed_port()
    result = _cli(tmp_path, "models", "list", RETRAIN_DATABASE_URL=url,
                  RETRAIN_MLFLOW_TRACKING_URI=f"http://user:t0ken@127.0.0.1:{port}",
                  MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    assert result.returncode == 5, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"unavailable: MLflow tracking server at http://***@127.0.0.1:{port} could not be "
        f"reached: [Errno 111] Connection refused")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """RETRAIN_HOME in tmp_path for this process's settings, restored afterwards."""
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def test_an_unexpected_error_is_one_line_and_its_traceback_goes_to_a_log(home, monkeypatch):
    from flows.cli.main import main
    from retrain.services import catalog

    def broken(**_):
        raise RuntimeError("the disk said no")

    monkeypatch.setattr(catalog, "list_runs", broken)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["runs", "list"])
    assert code == 6
    line = err.getvalue().strip()
    assert line.startswith("error: RuntimeError: the disk said no (traceback in ")
    log = Path(line.split("traceback in ")[1].split(";")[0])
    assert log.parent == home / "logs"
    assert "Traceback" in log.read_text() and "the disk said no" in log.read_text()
    try:
        main(["--verbose", "runs", "list"])
    except RuntimeError as exc:
        assert str(exc) == "the disk said no"
    else:
        raise AssertionError("--verbose lets the error through")
