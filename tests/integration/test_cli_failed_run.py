"""A run started with `retrain runs start` that fails: the terminal gets one line naming the
stage, the problem, the run and where to look; the tracebacks go to a log file (and to the
Prefect API); `--verbose` prints them here."""

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


def _start(tmp_path: Path, config: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(RETRAIN_HOME=str(tmp_path / "home"), PREFECT_HOME=str(tmp_path / "prefect"))
    return subprocess.run([sys.executable, "-m", "flows.cli", *flags, "runs", "start",
                           str(config)], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=600)


def test_a_failed_run_prints_one_line_and_logs_its_tracebacks_to_a_file(
        failing_config, tmp_path):
    result = _start(tmp_path, failing_config)
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


def test_verbose_prints_what_the_run_logs(failing_config, tmp_path):
    result = _start(tmp_path, failing_config, "--verbose")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "Task run 'ExampleGen" in result.stderr
    assert "run quiet-failure #1 failed: ExampleGen: " in result.stderr
    assert "; log " not in result.stderr
