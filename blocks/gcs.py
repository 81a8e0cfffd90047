"""GcsConnection: how runs reach Google Cloud Storage (`gs://` data, pipeline roots, models).

No prefect-gcp here: it cannot share the pipeline image with TFX (containers/README.md). The
pipeline's clients (gcsfs, TensorFlow's GCS file system under TFX's `fileio`, Beam's GCS IO,
google-cloud-storage) read Google's standard environment, so `environment` turns the block
into it: a service-account key file (written 0600 in a private directory) named by
GOOGLE_APPLICATION_CREDENTIALS, the project, and STORAGE_EMULATOR_HOST for an endpoint
override, which the Python clients read. TensorFlow's own GCS file system reads the key but
has its endpoints compiled in (blocks/README.md). Without a key the clients use Application
Default Credentials.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator


class GcsConnection(Block):
    """Google Cloud Storage for retrain's runs: a service-account key or ADC, a project, an
    optional endpoint (an emulator, a private endpoint)."""

    _block_type_name = "retrain GCS connection"
    _block_type_slug = "retrain-gcs"
    _description = ("How retrain's runs reach gs:// (data, pipeline roots, models): a "
                    "service-account key or Application Default Credentials.")

    service_account_info: SecretStr | None = Field(
        default=None,
        description="The service account's JSON key, pasted whole. Empty: Application Default "
        "Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's login, the node's metadata "
        "server).",
    )
    project: str | None = Field(
        default=None, description="Google Cloud project billed for the requests; empty: the "
        "key's own project or ADC's.")
    endpoint: str | None = Field(
        default=None, description="Storage API endpoint, e.g. http://127.0.0.1:9023 for an "
        "emulator; empty: storage.googleapis.com.")

    @field_validator("service_account_info")
    @classmethod
    def _is_a_service_account_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        try:
            key = json.loads(value.get_secret_value())
        except ValueError:
            raise ValueError("service_account_info is not JSON: paste the key file's "
                             "contents") from None
        missing = [name for name in ("type", "client_email", "private_key")
                   if not isinstance(key, dict) or name not in key]
        if missing:
            raise ValueError(f"service_account_info lacks {', '.join(missing)}: not a "
                             "service-account key")
        return value

    def environment(self, directory: Path | None = None) -> dict[str, str]:
        """The environment that points every GCS client at this connection.

        With a key, writes it to `directory` (default: a new private temporary directory) as
        a 0600 file and names it in GOOGLE_APPLICATION_CREDENTIALS.
        """
        env: dict[str, str] = {}
        if self.service_account_info is not None:
            if directory is None:
                directory = Path(tempfile.mkdtemp(prefix="retrain-gcs-"))  # 0700
                atexit.register(shutil.rmtree, directory, True)
            path = directory / "service-account.json"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(self.service_account_info.get_secret_value())
            env["GOOGLE_APPLICATION_CREDENTIALS"] = str(path)
        if self.project:
            env["GOOGLE_CLOUD_PROJECT"] = self.project
        if self.endpoint:
            env["STORAGE_EMULATOR_HOST"] = self.endpoint.rstrip("/")
        return env
