"""The MLflow warm-up thread must not change os.environ while the run reads it: numpy's first
import sets and deletes OPENBLAS_MAIN_FREE, and a Prefect settings read iterating os.environ
at that moment failed a run with KeyError('OPENBLAS_MAIN_FREE') under load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
# A fresh interpreter (numpy not yet imported), reading os.environ as Prefect's settings do
# until the warm-up thread has numpy (MLflow imports it) or ends.
PROBE = """
import os, sys
from retrain.adapters.mlflow_registry import warm_up
assert "numpy" not in sys.modules
thread = warm_up("probe")
errors = 0
while thread.is_alive() and not hasattr(sys.modules.get("numpy"), "ndarray"):
    try:
        dict(os.environ.items())
    except KeyError:
        errors += 1
print(errors, flush=True)
os._exit(0)
"""


def test_the_warm_up_thread_leaves_the_environment_alone(tmp_path):
    env = {**os.environ, "RETRAIN_HOME": str(tmp_path),
           "RETRAIN_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("OPENBLAS_MAIN_FREE", None)
    for _ in range(3):  # without the fix, 28 of 30 such probes failed
        probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                               env=env, cwd=REPO, timeout=120)
        assert probe.returncode == 0, probe.stderr[-2000:]
        assert probe.stdout.split()[-1] == "0"
