"""The retrain-cpu pool's Kubernetes Job (a whole training run in the pipeline image),
rendered by Prefect's own worker code and validated against the Kubernetes 1.30 schema in
strict mode (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
from prefect.utilities.schema_tools import validate

from deployments.gpu_jobs import as_submitted_to_kubernetes, render_manifest

TEMPLATE = json.loads((Path(__file__).resolve().parents[3] / "deployments" / "k8s"
                       / "pipeline_job_template.json").read_text())
IMAGE = "europe-docker.pkg.dev/acme/retrain/pipeline:2026.12"


def test_the_pipeline_job_is_strictly_valid_and_asks_for_no_gpu():
    variables = {"image": IMAGE, "env": {"RETRAIN_GCS_BLOCK": "prod",
                                        "PREFECT_FLOW_RUN_EXECUTE_SIGTERM_BEHAVIOR": "crash"}}
    validate(variables, TEMPLATE["variables"], raise_on_error=True)
    manifest = render_manifest(variables, flow_run_name="ranker-7", template=TEMPLATE)
    kubernetes_validate.validate(as_submitted_to_kubernetes(manifest), "1.30.0", strict=True)

    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "8Gi"},
                                      "limits": {"memory": "8Gi"}}
    assert pod["tolerations"] == [] and pod["nodeSelector"] == {}
    assert pod["serviceAccountName"] == "retrain-pipeline"
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["RETRAIN_GCS_BLOCK"] == "prod" and "PREFECT__FLOW_RUN_ID" in env
    assert container["args"] == ["prefect", "flow-run", "execute"]
    assert manifest["spec"]["backoffLimit"] == 0
    assert manifest["spec"]["activeDeadlineSeconds"] == 172800
