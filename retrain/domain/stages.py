"""The eight TFX stages of a training run, in pipeline order."""

from __future__ import annotations

from enum import Enum


class Stage(str, Enum):
    """A stage of the pipeline; its value is the TFX component name (and the Prefect task
    name of the stage's task)."""

    EXAMPLE_GEN = "ExampleGen"
    STATISTICS_GEN = "StatisticsGen"
    SCHEMA_GEN = "SchemaGen"
    EXAMPLE_VALIDATOR = "ExampleValidator"
    TRANSFORM = "Transform"
    TRAINER = "Trainer"
    EVALUATOR = "Evaluator"
    PUSHER = "Pusher"

    def __str__(self) -> str:
        return self.value

    @property
    def position(self) -> int:
        """0 for ExampleGen … 7 for Pusher."""
        return STAGES.index(self)


# Pipeline order (Enum iteration order is definition order).
STAGES: tuple[Stage, ...] = tuple(Stage)
