"""A run started with `retrain runs start` that fails: the terminal gets one line naming the
stage, the problem, the run and where to look; the tracebacks go to a log file (and to the
Prefect API); `--verbose` prints them here. The run goes to the embedded default's long-lived
Prefect server, started in the background when none answers, so the Prefect UI shows it;
`--ephemeral` keeps it in process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
BAD_ROW = "B000001,P000001,cat_01,city_01,1704067200,2,4.5,one-too-many"


@pytest.fixture
def failing_config(tiny_interactions, tmp_path) -> Path:
    """A config whose data has a row with one field too many (ExampleGen refuses it)."""
    from retrain.domain.examples import rating_config

    data = tmp_path / "data"
    data.mkdir()
    (source,) = Path(tiny_interactions).glob("*.csv")
    lines = source.read_text().splitlines()[:200]
    (data / "part.csv").write_text("\n".join(lines + [BAD_ROW]) + "\n")
    config = rating_config(data, model_name="quiet-failure",
                           pipeline_root=str(tmp_path / "pipelines"),
                           pusher={"serving_base": str(tmp_path / "serving")})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.snapshot()))
    return path


def _start(tmp_path: Path, config: Path, *flags: str, port: int = 9,
           ephemeral: bool = False) -> subprocess.CompletedProcess:
    """`retrain [flags] runs start config` on the embedded default (no PREFECT_API_URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(RETRAIN_HOME=str(tmp_path / "home"), PREFECT_HOME=str(tmp_path / "prefect"),
               RETRAIN_LOCAL_SERVER_PORT=str(port))
    return subprocess.run([sys.executable, "-m", "flows.cli", *flags, "runs", "start",
                           str(config), *(["--ephemeral"] if ephemeral else [])],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


@pytest.fixture
def local_server_port(tmp_path):
    """A free port for the embedded default's server; the server is stopped afterwards as
    `make stop` does."""
    from prefect_services import free_port

    yield free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    subprocess.run([str(Path(sys.executable).with_name("prefect")), "server", "stop"],
                   env={**env, "PREFECT_HOME": str(tmp_path / "prefect")},
                   capture_output=True, timeout=120)


def test_a_failed_run_prints_one_line_and_logs_its_tracebacks_to_a_file(
        failing_config, tmp_path, local_server_port):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = local_server_port
    result = _start(tmp_path, failing_config, port=port)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith("run quiet-failure #1 failed: ExampleGen: ")
    assert "part.csv line 201: 8 field(s) where the header has 7" in line
    run_id = result.stdout.split("created run quiet-failure #1 (")[1].split(")")[0]
    assert f"(`retrain runs show {run_id[:8]}` shows more; log " in line
    log = Path(line.rsplit("; log ", 1)[1].rstrip(")"))
    assert log.parent == tmp_path / "home" / "logs"
    text = log.read_text()
    assert "Traceback" in text and "ExampleGen failed:" in text
    assert f"run quiet-failure #1 ({run_id}) is failed" in result.stdout
    # The run is in the Prefect UI: the server was started for it and stays up for the next.
    assert "started Prefect's server in the background" in result.stdout
    flow_run_id = result.stdout.split("; flow run ")[1].split()[0]
    assert result.stdout.splitlines()[-1] == (
        f"run view: http://127.0.0.1:{port}/runs/flow-run/{flow_run_id}")
    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}), \
            get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        assert flow_run.state.is_failed() and "ExampleGen failed:" in flow_run.state.message
        tasks = {task.name.rsplit("-", 1)[0] for task in client.read_task_runs()}
        assert {"check-stores", "ExampleGen"} <= tasks


def test_verbose_prints_what_the_run_logs(failing_config, tmp_path):
    result = _start(tmp_path, failing_config, "--verbose", ephemeral=True)
    assert result.returncode == 1
    assert "run view" not in result.stdout and not (tmp_path / "prefect" / "server.pid").exists()
    assert "Traceback" in result.stderr and "Task run 'ExampleGen" in result.stderr
    assert "run quiet-failure #1 failed: ExampleGen: " in result.stderr
    assert "; log " not in result.stderr
