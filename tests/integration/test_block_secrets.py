"""Secrets kept in the connection blocks stay there: a whole training run with its state
store, MLflow server and GCS connection all taken from blocks (RETRAIN_*_BLOCK) writes none
of the planted secrets to a log line, the terminal, a run record, MLflow or a Prefect flow
run's parameters, while the run really used each block."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

pytestmark = [pytest.mark.slow, pytest.mark.service]

SECRETS = {
    "database": "planted-db-password-7c1e",
    "mlflow": "planted-mlflow-token-93ab",
    "gcs": "planted-gcs-key-material-4d52",
}
KEY = {"type": "service_account", "client_email": "trainer@proj.iam.gserviceaccount.com",
       "private_key": f"-----BEGIN PRIVATE KEY-----\n{SECRETS['gcs']}\n-----END PRIVATE KEY-----\n",
       "project_id": "proj"}
ENV = ("RETRAIN_DATABASE_BLOCK", "RETRAIN_MLFLOW_BLOCK", "RETRAIN_GCS_BLOCK",
       "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "STORAGE_EMULATOR_HOST",
       "MLFLOW_TRACKING_TOKEN")


def _leaks(where: str, content: str) -> list[str]:
    return [f"{name} secret in {where}" for name, secret in SECRETS.items() if secret in content]


def _database_rows(url: str) -> str:
    """Every row of every table of the store, as text."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
            rows = [row[0] for table in tables
                    for row in conn.execute(text(f'SELECT t::text FROM "{table}" t'))]
    finally:
        engine.dispose()
    assert any("training_run" in table for table in tables), tables
    return "\n".join(rows)


@pytest.fixture
def block_environment():
    """Restore the process environment the blocks change."""
    saved = {name: os.environ.get(name) for name in ENV}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def test_a_run_on_blocks_leaks_none_of_their_secrets(
        prefect_harness, postgres_db, tiny_interactions, in_memory_beam, tmp_path,
        block_environment, caplog, capfd):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, LogFilter, LogFilterFlowRunId

    from blocks import GcsConnection, MlflowServer, StateStoreDatabase
    from flows.training_pipeline import training_pipeline
    from retrain.domain.examples import recommender_config
    from retrain.services.database import upgrade_store
    from retrain.settings import get_settings

    # postgres_db's role needs no password (trust), so a wrong one would pass too: the rows
    # found in that very database show the block's URL was used.
    StateStoreDatabase(url=postgres_db, password=SECRETS["database"]).save("store", overwrite=True)
    mlflow_db = tmp_path / "mlflow.db"
    MlflowServer(tracking_uri=f"sqlite:///{mlflow_db}", token=SECRETS["mlflow"],
                 artifact_root=str(tmp_path / "mlartifacts")).save("tracking", overwrite=True)
    GcsConnection(service_account_info=json.dumps(KEY), project="proj",
                  endpoint="http://127.0.0.1:9").save("storage", overwrite=True)
    os.environ.update({"RETRAIN_DATABASE_BLOCK": "store",
                       "RETRAIN_MLFLOW_BLOCK": "retrain-mlflow/tracking",
                       "RETRAIN_GCS_BLOCK": "storage"})
    get_settings.cache_clear()
    assert make_url(get_settings().resolved_database_url()).password == SECRETS["database"]
    upgrade_store()

    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="prefect")  # the suite's PREFECT_LOGGING_LEVEL is WARNING
    config = recommender_config(
        tiny_interactions, "retrieval", model_name="block-secrets",
        pipeline_root=str(tmp_path / "pipelines"),
        pusher={"serving_base": str(tmp_path / "serving")},
        training={"epochs": 1, "batch_size": 128, "epoch_eval_rows": 128},
        # Blessed and pushed, so MLflow gets a run: 2,000 rows and one epoch do not beat
        # the most popular products by the default margin.
        evaluator={"trivial_baseline": {"enabled": False}},
        beam=in_memory_beam)
    state = training_pipeline(config, return_state=True)
    assert state.is_completed() and state.name == "Completed", state.message
    flow_run_id = state.state_details.flow_run_id

    # Each block was used: the key file the GCS clients read, the store's rows, MLflow's run.
    assert json.loads(Path(os.environ["GOOGLE_APPLICATION_CREDENTIALS"]).read_text()) == KEY
    assert os.environ["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:9"
    assert os.environ["MLFLOW_TRACKING_TOKEN"] == SECRETS["mlflow"]
    rows = _database_rows(postgres_db)
    assert str(flow_run_id) in rows and "block-secrets" in rows
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")
    runs = client.search_runs([client.get_experiment_by_name("block-secrets").experiment_id])
    assert len(runs) == 1 and runs[0].data.params

    leaks = _leaks("the run records", rows)
    leaks += _leaks("MLflow params and tags", json.dumps(
        [{"params": r.data.params, "tags": r.data.tags} for r in runs]))
    leaks += _leaks("MLflow's store", mlflow_db.read_bytes().decode("latin-1"))
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=60)  # the run's log lines go out in background batches
    with get_client(sync_client=True) as prefect:
        flow_runs = prefect.read_flow_runs(flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]}))
        logs = prefect.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(
            any_=[flow_run_id])))
    assert logs, "the run logged nothing to the API"
    leaks += _leaks("the flow run's parameters", json.dumps(
        [run.parameters for run in flow_runs], default=str))
    leaks += _leaks("the flow run's logs in Prefect", "\n".join(log.message for log in logs))
    leaks += _leaks("Python log records", "\n".join(r.getMessage() for r in caplog.records))
    out, err = capfd.readouterr()
    leaks += _leaks("the terminal", out + err)
    assert leaks == []
