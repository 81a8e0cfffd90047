"""What the training flow hands the `gpu-trainer` flow: references, never data."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tasks.shared.caching import StagePlan
from retrain.domain.config import PipelineConfig
from retrain.domain.recommender import GpuOption
from retrain.domain.refs import StageOutput

OUTPUT_FILE = "trainer_output.json"


class TrainerRequest(BaseModel):
    """One Trainer attempt: the run's config, its upstream artifacts on shared storage, the
    GPU option to use and the run record to report epochs to."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    config: PipelineConfig = Field(description="The training run's whole config.")
    transform: StageOutput = Field(
        description="Transform's output: transformed examples and the transform graph."
    )
    schema_: StageOutput = Field(alias="schema", description="SchemaGen's output: the schema.")
    plan: StagePlan = Field(
        description="The Trainer's plan in the training flow: its fingerprint and the output "
        "directory this attempt writes to."
    )
    gpu: GpuOption = Field(description="The GPU option of this attempt (type and count).")
    attempt: int = Field(default=1, ge=1, description="Attempt number within the stage.")
    run_flow_run_id: str | None = Field(
        default=None,
        description="Flow run of the training run whose record gets the epochs; empty: none.",
    )

    @property
    def attempt_config(self) -> PipelineConfig:
        """The run's config with this attempt's GPU option in place of its GPU list."""
        gpu = self.config.gpu.with_option(self.gpu)
        return self.config.model_copy(update={"gpu": gpu})
