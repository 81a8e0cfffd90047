"""One training-pipeline run in its own process, started at a barrier shared with others
(test_identical_runs.py): `python identical_run.py DATA ROOT BARRIER COUNT`.

Prefect and the retrain store come from the environment the test sets. Prints the flow
run's state name as its last line.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def main(data: str, root: str, barrier: str, count: int) -> int:
    from flows.training_pipeline import training_pipeline
    from retrain.domain.examples import recommender_config

    config = recommender_config(
        data, "retrieval", model_name="identical-runs",
        input={"format": "parquet", "pattern": "*.parquet"},
        pipeline_root=f"{root}/pipelines", pusher={"serving_base": f"{root}/serving"},
        training={"epochs": 1}, beam={"args": ["--direct_running_mode=in_memory"]})
    # Everything is imported: arrive, then start when every process has arrived.
    Path(barrier, uuid.uuid4().hex).touch()
    deadline = time.monotonic() + 300
    while len(list(Path(barrier).iterdir())) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    state = training_pipeline(config, return_state=True)
    print(state.name, flush=True)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
