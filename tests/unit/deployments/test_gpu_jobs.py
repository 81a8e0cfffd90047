"""The GPU trainer's Kubernetes Job, rendered by Prefect's own worker code for several GPU
configs and validated against the Kubernetes 1.30 schema in strict mode (offline)."""

from __future__ import annotations

import kubernetes_validate
import pytest
from prefect.utilities.schema_tools import validate

from deployments.gpu_jobs import (
    ACCELERATOR_LABEL,
    SPOT_LABEL,
    as_submitted_to_kubernetes,
    base_job_template,
    job_variables,
    render_manifest,
)
from retrain.domain.recommender import GpuConfig

K8S = "1.30.0"
IMAGE = "europe-docker.pkg.dev/acme/retrain/trainer:2026.11"
GPU_TOL = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
SPOT_TOL = {"key": SPOT_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}

CASES = {
    "4xT4-spot": (GpuConfig(enabled=True, count=4, type="T4", preemptible=True), {},
                  4, {ACCELERATOR_LABEL: "nvidia-tesla-t4", SPOT_LABEL: "true"},
                  [GPU_TOL, SPOT_TOL]),
    "2xL4": (GpuConfig(enabled=True, count=2, type="nvidia-l4"),
             {"cpu_request": "8", "memory_request": "32Gi", "active_deadline_seconds": 7200},
             2, {ACCELERATOR_LABEL: "nvidia-l4"}, [GPU_TOL]),
    "1xGPU-any-type": (GpuConfig(enabled=True), {}, 1, {}, [GPU_TOL]),
    "cpu-only": (GpuConfig(), {}, 0, {}, []),
}


def _pod(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]


@pytest.mark.parametrize("case", list(CASES))
def test_rendered_job_is_strictly_valid_with_the_requested_gpus(case):
    gpu, resources, count, selector, tolerations = CASES[case]
    variables = job_variables(gpu, image=IMAGE, env={"RETRAIN_PIPELINE_ROOT": "gs://b/p"},
                              **resources)
    # The job variables are what the pool's variables schema accepts.
    validate(variables, base_job_template()["variables"], raise_on_error=True)
    manifest = render_manifest(variables, flow_run_name="ranker-7-trainer")
    kubernetes_validate.validate(as_submitted_to_kubernetes(manifest), K8S, strict=True)

    pod = _pod(manifest)
    (container,) = pod["containers"]
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert limits["nvidia.com/gpu"] == requests["nvidia.com/gpu"] == count
    assert requests["cpu"] == resources.get("cpu_request", "4")
    assert requests["memory"] == limits["memory"] == resources.get("memory_request", "16Gi")
    assert pod["nodeSelector"] == selector
    assert pod["tolerations"] == tolerations
    assert container["image"] == IMAGE
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["RETRAIN_PIPELINE_ROOT"] == "gs://b/p"
    assert "PREFECT__FLOW_RUN_ID" in env  # the worker's own variables are still there
    assert container["args"] == ["prefect", "flow-run", "execute"]
    spec = manifest["spec"]
    assert spec["activeDeadlineSeconds"] == resources.get("active_deadline_seconds", 86400)
    assert spec["ttlSecondsAfterFinished"] == 3600
    assert spec["backoffLimit"] == 0  # retrain decides what is retried, not Kubernetes
    assert (spec["parallelism"], spec["completions"]) == (1, 1)
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "retrain-trainer"
    assert manifest["metadata"]["namespace"] == "retrain"
    assert manifest["metadata"]["generateName"] == "ranker-7-trainer-"


def test_prefect_needs_two_keys_kubernetes_does_not_know_and_nothing_else():
    manifest = render_manifest(job_variables(GpuConfig(enabled=True, count=4, type="T4"),
                                             image=IMAGE))
    with pytest.raises(kubernetes_validate.ValidationError,
                       match=r"\('completions', 'parallelism' were unexpected\)"):
        kubernetes_validate.validate(manifest, K8S, strict=True)
    submitted = as_submitted_to_kubernetes(manifest)
    assert "completions" not in _pod(submitted) and "completions" in _pod(manifest)


def test_the_template_refuses_what_the_schema_forbids():
    schema = base_job_template()["variables"]
    with pytest.raises(Exception, match="17"):
        validate({"image": IMAGE, "gpu_count": 17}, schema, raise_on_error=True)
    with pytest.raises(Exception, match="image"):
        validate({"gpu_count": 1}, schema, raise_on_error=True)
