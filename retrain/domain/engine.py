"""How the data stages execute: TFX's Beam executors or the streaming path, and Beam's args."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BeamConfig(_Config):
    """Apache Beam settings for ExampleGen, StatisticsGen, Transform and Evaluator."""

    args: list[str] = Field(
        default_factory=lambda: [
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        ],
        description="beam_pipeline_args for every Beam-based executor, e.g. DirectRunner "
        "options or --runner=DataflowRunner --project=… --region=… --temp_location=gs://….",
    )


class DataEngine(str, Enum):
    """Which code runs the data stages (ExampleGen, StatisticsGen, Transform's analysis)."""

    AUTO = "auto"
    """Streaming unless `beam.args` name a runner other than the DirectRunner."""
    STREAMING = "streaming"
    """Worker processes streaming record batches: memory bounded, every core used."""
    BEAM = "beam"
    """TFX's Beam executors with `beam.args` (Dataflow, Flink, Spark, or the DirectRunner)."""


class DataConfig(_Config):
    """How raw data becomes Examples and statistics."""

    engine: DataEngine = Field(
        default=DataEngine.AUTO,
        description="auto: streaming on one machine, TFX's Beam executors when beam.args name "
        "a distributed runner; streaming: always the bounded-memory path (standard TFX "
        "artifacts all the same); beam: always TFX's Beam executors.",
    )
    workers: int | None = Field(
        default=None, ge=1, le=256,
        description="Worker processes of the streaming path; empty: one per CPU core.",
    )
    unit_mb: int = Field(
        default=64, ge=1, le=1024,
        description="Input bytes a streaming worker reads at a time (a CSV byte range, Parquet "
        "row groups); bounds each worker's memory.",
    )

    def streaming(self, beam_args: list[str]) -> bool:
        """True when the data stages take the streaming path."""
        if self.engine is not DataEngine.AUTO:
            return self.engine is DataEngine.STREAMING
        return direct_runner(beam_args)


def direct_runner(beam_args: list[str]) -> bool:
    """True when `beam_args` run Beam on this machine (no --runner, or the DirectRunner)."""
    runners = [arg.split("=", 1)[1] for arg in beam_args if arg.startswith("--runner=")]
    runners += [beam_args[i + 1] for i, arg in enumerate(beam_args[:-1]) if arg == "--runner"]
    return all(runner.lower() in ("directrunner", "direct") for runner in runners)
