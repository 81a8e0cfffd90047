"""The GPU trainer's Kubernetes job: the work pool's base job template and its variables.

`k8s/gpu_trainer_job_template.json` is the `retrain-gpu` work pool's base job template
(`prefect work-pool create retrain-gpu --type kubernetes --base-job-template <it>`). Unlike
Prefect's default Kubernetes template it has variables for the GPU count (`nvidia.com/gpu`
requested and limited), a node selector (GPU type, spot nodes), tolerations, CPU and memory
requests, the service account, an active deadline and a finished-job TTL; `backoffLimit`
defaults to 0 because retrain decides what is retried (issue 6: infrastructure failures
resume from the last epoch; user-code errors are not retried blindly).

Prefect's Kubernetes worker (prefect-kubernetes 0.7.13) refuses a manifest without
`parallelism` and `completions` under the *pod* spec (`_get_base_job_manifest`), where
Kubernetes has no such fields and its API server drops them (field validation defaults to
Warn). The template carries them there for the worker, and at the Job spec, where Kubernetes
reads them; `as_submitted_to_kubernetes` drops the pod-spec pair, as the API server does.

`job_variables(gpu, image=...)` turns a run's typed `GpuConfig` into that template's
variables (GKE labels: `cloud.google.com/gke-accelerator`, `cloud.google.com/gke-spot`), and
`render_manifest(variables)` renders the Job exactly as the Prefect Kubernetes worker would
submit it (Prefect's own `KubernetesWorkerJobConfiguration`), for checks and previews.
"""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from retrain.domain.costs import normalise_gpu_type
from retrain.domain.recommender import GpuConfig

TEMPLATE_PATH = Path(__file__).with_name("k8s") / "gpu_trainer_job_template.json"
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
SPOT_LABEL = "cloud.google.com/gke-spot"
# Keys Prefect's worker requires under the pod spec that are not part of a PodSpec.
PREFECT_POD_SPEC_KEYS = ("parallelism", "completions")
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
SPOT_TOLERATION = {"key": SPOT_LABEL, "operator": "Equal", "value": "true",
                   "effect": "NoSchedule"}


@lru_cache(maxsize=1)
def _template_text() -> str:
    return TEMPLATE_PATH.read_text()


def base_job_template() -> dict[str, Any]:
    """The `retrain-gpu` work pool's base job template (a fresh copy)."""
    return json.loads(_template_text())


def job_variables(
    gpu: GpuConfig, *, image: str | None = None, env: dict[str, str] | None = None,
    cpu_request: str | None = None, memory_request: str | None = None,
    active_deadline_seconds: int | None = None,
) -> dict[str, Any]:
    """Job variables for a Trainer pod with `gpu`: GPU count, node selector, tolerations.

    A disabled GpuConfig gives a CPU-only pod (no GPU request, no GPU node selector or
    toleration). Unset resources keep the template's defaults, and no image or env keeps
    the deployment's (a flow run's job variables replace a deployment's key by key).
    """
    variables: dict[str, Any] = {"image": image} if image else {}
    if gpu.enabled:
        selector = {ACCELERATOR_LABEL: normalise_gpu_type(gpu.type)} if gpu.type else {}
        tolerations = [GPU_TOLERATION]
        variables["gpu_count"] = gpu.count
    else:
        selector, tolerations = {}, []
        variables["gpu_count"] = 0
    if gpu.preemptible:
        selector[SPOT_LABEL] = "true"
        tolerations = [*tolerations, SPOT_TOLERATION]
    variables["node_selector"] = selector
    variables["tolerations"] = tolerations
    optional = {"env": env, "cpu_request": cpu_request, "memory_request": memory_request,
                "active_deadline_seconds": active_deadline_seconds}
    variables.update({key: value for key, value in optional.items() if value is not None})
    return variables


def render_manifest(variables: dict[str, Any], flow_run_name: str = "trainer",
                    template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Job manifest the Prefect Kubernetes worker would submit for a flow run of a
    deployment on the `retrain-gpu` pool (or the pool of `template`, a base job template)
    with these job variables.

    The same steps as `KubernetesWorkerJobConfiguration.from_template_and_values` followed
    by `prepare_for_flow_run` (variable defaults, values, Prefect's `apply_values`, the
    worker's own manifest completion), minus the block-document and workspace-variable
    lookups, which need a Prefect API: this template has no such references.
    """
    from prefect.client.schemas.objects import FlowRun
    from prefect.utilities.templating import apply_values
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration as Configuration

    template = template or base_job_template()
    values = Configuration._get_base_config_defaults(template["variables"]["properties"])
    values.update(variables)
    configuration = Configuration(**apply_values(template["job_configuration"], values))
    flow_run = FlowRun(id=uuid.uuid4(), name=flow_run_name, flow_id=uuid.uuid4())
    configuration.prepare_for_flow_run(flow_run)
    return configuration.job_manifest


def as_submitted_to_kubernetes(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as the API server keeps it: without Prefect's pod-spec-only keys."""
    kept = json.loads(json.dumps(manifest))
    pod_spec = kept["spec"]["template"]["spec"]
    for key in PREFECT_POD_SPEC_KEYS:
        pod_spec.pop(key, None)
    return kept
