"""The connection blocks (blocks/): registered in a real (temporary) Prefect API, saved with
secrets, and taken by the settings that name them; the env defaults stay as they were."""

from __future__ import annotations

import json
import stat

import pytest
from pydantic import ValidationError

from blocks import GcsConnection, MlflowServer, StateStoreDatabase
from flows.cli.main import main
from retrain.settings import BlockSettingError, RetrainSettings, get_settings

pytestmark = pytest.mark.usefixtures("prefect_harness")

KEY = {"type": "service_account", "client_email": "trainer@proj.iam.gserviceaccount.com",
       "private_key": "-----BEGIN PRIVATE KEY-----\nplanted-key-material\n-----END PRIVATE KEY-----\n",
       "project_id": "proj"}


def _document(slug: str, name: str) -> dict:
    """The block document as the API hands it to anyone without include_secrets."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_block_document_by_name(name, slug, include_secrets=False).data


def test_register_puts_every_type_in_the_catalogue_with_described_fields_and_secrets(capsys):
    assert main(["blocks", "register"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "registered block type retrain-gcs", "registered block type retrain-mlflow",
        "registered block type retrain-state-store"]
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for block_type, secrets in [(GcsConnection, ["service_account_info"]),
                                    (MlflowServer, ["token"]),
                                    (StateStoreDatabase, ["password"])]:
            slug = block_type.get_block_type_slug()
            schema = client.get_most_recent_block_schema_for_block_type(
                client.read_block_type_by_slug(slug).id)
            properties = schema.fields["properties"]
            assert all(p.get("description") for p in properties.values()), slug
            assert schema.fields["secret_fields"] == secrets


def test_the_state_store_url_and_password_come_from_the_block_named():
    url = "postgresql+psycopg://retrain@db.internal:5432/retrain"
    StateStoreDatabase(url=url, password="planted-db-password").save("prod", overwrite=True)
    expected = "postgresql+psycopg://retrain:planted-db-password@db.internal:5432/retrain"
    for name in ("prod", "retrain-state-store/prod"):
        settings = RetrainSettings(database_block=name, database_url="sqlite:///ignored.db")
        assert settings.resolved_database_url() == expected
    # Stored as a secret: the API shows it to no one who does not ask for secrets.
    assert "planted-db-password" not in json.dumps(_document("retrain-state-store", "prod"))
    with pytest.raises(ValidationError, match="url holds a password; put it in the password"):
        StateStoreDatabase(url="postgresql+psycopg://retrain:pw@db/retrain")


def test_without_block_settings_the_env_defaults_hold(tmp_path):
    settings = RetrainSettings(home=tmp_path, database_url="sqlite:///x.db")
    assert settings.resolved_database_url() == "sqlite:///x.db"
    assert settings.resolved_mlflow_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert settings.resolved_mlflow_token() is None
    assert settings.gcs_environment() == {}


def test_a_missing_block_is_one_line_naming_setting_and_block(monkeypatch, capsys):
    with pytest.raises(BlockSettingError) as error:
        RetrainSettings(database_block="nowhere").resolved_database_url()
    assert str(error.value) == (
        "RETRAIN_DATABASE_BLOCK=nowhere: the Prefect API has no retrain-state-store block "
        "named 'nowhere'; create it (UI: Blocks, after `retrain blocks register`) or unset "
        "the setting")
    with pytest.raises(BlockSettingError, match="not a retrain-mlflow block; give <name> or "
                                                 "retrain-mlflow/<name>"):
        RetrainSettings(mlflow_block="retrain-gcs/prod").resolved_mlflow_uri()
    # The CLI: exit 2 and that line alone.
    monkeypatch.setenv("RETRAIN_DATABASE_BLOCK", "nowhere")
    get_settings.cache_clear()
    try:
        assert main(["runs", "list"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [str(error.value)]


def test_mlflow_block_sets_uri_token_and_artifact_root(monkeypatch):
    from retrain.adapters import mlflow_registry

    MlflowServer(tracking_uri="http://127.0.0.1:9/mlflow", token="planted-mlflow-token",
                 artifact_root="gs://bucket/mlartifacts").save("team", overwrite=True)
    settings = RetrainSettings(mlflow_block="team", mlflow_tracking_uri="sqlite:///ignored.db")
    assert settings.resolved_mlflow_uri() == "http://127.0.0.1:9/mlflow"
    assert settings.resolved_mlflow_artifact_root() == "gs://bucket/mlartifacts"
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setattr(mlflow_registry, "get_settings", lambda: settings)
    client = mlflow_registry.client()
    import os

    assert os.environ["MLFLOW_TRACKING_TOKEN"] == "planted-mlflow-token"
    assert client.tracking_uri == "http://127.0.0.1:9/mlflow"
    assert "planted-mlflow-token" not in json.dumps(_document("retrain-mlflow", "team"))
    with pytest.raises(ValidationError, match="tracking_uri holds credentials"):
        MlflowServer(tracking_uri="https://user:pw@mlflow.example.com")
    # Without an artifact root, the server's default (as the field says), not this
    # process's home, where the server and the next pod could not read the model files.
    MlflowServer(tracking_uri="http://127.0.0.1:9/mlflow").save("no-root", overwrite=True)
    assert RetrainSettings(mlflow_block="no-root").resolved_mlflow_artifact_root() is None


def test_gcs_block_becomes_the_environment_every_gcs_client_reads(tmp_path):
    GcsConnection(service_account_info=json.dumps(KEY), project="proj",
                  endpoint="http://127.0.0.1:9023/").save("prod", overwrite=True)
    env = RetrainSettings(gcs_block="retrain-gcs/prod").gcs_environment()
    key_file = env["GOOGLE_APPLICATION_CREDENTIALS"]
    assert json.loads(open(key_file).read()) == KEY
    assert stat.S_IMODE(__import__("os").stat(key_file).st_mode) == 0o600
    assert env["GOOGLE_CLOUD_PROJECT"] == "proj"
    assert env["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:9023"
    assert "planted-key-material" not in json.dumps(_document("retrain-gcs", "prod"))
    # ADC: no key, no file.
    assert GcsConnection(project="p").environment(tmp_path) == {"GOOGLE_CLOUD_PROJECT": "p"}
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValidationError, match="service_account_info is not JSON"):
        GcsConnection(service_account_info="not json")
    with pytest.raises(ValidationError, match="lacks client_email, private_key"):
        GcsConnection(service_account_info=json.dumps({"type": "service_account"}))
