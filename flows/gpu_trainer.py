"""The `gpu-trainer` flow: the Trainer stage alone, from artifact references on shared storage.

The training flow starts it through `run_deployment` (deployment `gpu-trainer/kubernetes`
in prefect.yaml, on the `retrain-gpu` Kubernetes work pool) when the run's `gpu.deployment`
asks for it, once per attempt (`tasks/trainer/remote.py`). It writes the model under the
run's pipeline root and the epochs to the run's record; a failure here fails the run's
Trainer stage with this flow run's message.
"""

from __future__ import annotations

from prefect import flow

from retrain.domain.refs import TrainerOutput
from retrain.settings import apply_gcs_connection
from tasks.shared.stores_task import check_stores
from tasks.trainer.request import TrainerRequest
from tasks.trainer.task import train_attempt


@flow(name="gpu-trainer", log_prints=True)
def gpu_trainer(request: TrainerRequest) -> TrainerOutput:
    """Train one attempt of a run's Trainer on this pod's GPUs (or CPU, for a CPU option).

    Args:
        request: What the training flow asks of this attempt: config, inputs, GPU option.
    """
    check_stores(request.config, registers=False)  # its record and model outlive the pod
    apply_gcs_connection()
    return train_attempt(request)
