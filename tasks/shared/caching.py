"""Stage caching on Prefect's own cache machinery, keyed by stage fingerprints.

A stage's output directory is derived from its fingerprint and ends with a completion
marker written last. The cache key is derived from that directory, and a cached record is
trusted only while the marker exists: if the artifacts were deleted, the stale record is
dropped and the stage runs again instead of handing downstream a dangling reference.

The marker, beside the artifacts, is what says a stage is done; Prefect's cache record, in
the result storage of the process that ran it, is derived from it. A run in a process whose
storage lacks the record (a new pod, another machine, a cleared Prefect home) finds the
marker and gets the record made from it, so the stage still shows Cached there instead of
running again.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Optional

from prefect.cache_policies import CachePolicy
from pydantic import BaseModel, ConfigDict, Field

from retrain.adapters.stage_outputs import MARKER, read_marker
from retrain.domain.config import PipelineConfig
from retrain.domain.refs import output_type
from retrain.domain.stages import Stage


class StagePlan(BaseModel):
    """Where a stage will write, decided from its inputs before it runs."""

    model_config = ConfigDict(frozen=True)

    stage: Stage = Field(description="TFX stage name.")
    fingerprint: str = Field(description="Hash of all the stage's inputs.")
    output_dir: str = Field(description="<pipeline_root>/<model>/<stage>/<fingerprint[:16]>.")
    inputs: tuple[str, ...] = Field(
        default=(), description="The data files the fingerprint covers (ExampleGen), listed "
        "once: the stage reads exactly these.")

    @classmethod
    def for_stage(cls, config: PipelineConfig, stage: Stage, fingerprint: str,
                  inputs: tuple[str, ...] = ()) -> StagePlan:
        """The plan of `stage` in the run described by `config`."""
        root = config.pipeline_root.rstrip("/")
        return cls(
            stage=stage,
            fingerprint=fingerprint,
            output_dir=f"{root}/{config.model_name}/{stage}/{fingerprint[:16]}",
            inputs=inputs,
        )

    @property
    def marker(self) -> str:
        """Completion marker path; written after every artifact is in place."""
        return f"{self.output_dir}/{MARKER}"

    @property
    def cache_key(self) -> str:
        """Prefect cache key: one per output location."""
        return f"{self.stage.lower()}-{hashlib.sha256(self.output_dir.encode()).hexdigest()[:40]}"


def _fs(uri: str) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(uri)


def marker_exists(plan: StagePlan) -> bool:
    """True once the stage finished writing its outputs under the plan's directory."""
    fs, path = _fs(plan.marker)
    return fs.exists(path)


def write_marker(plan: StagePlan, output: BaseModel) -> None:
    """Record completion: the stage's output reference, written last (into a directory made
    here if the stage wrote nothing, e.g. a push of the model that is already the champion)."""
    fs, path = _fs(plan.marker)
    fs.makedirs(fs._parent(path), exist_ok=True)
    with fs.open(path, "w") as handle:
        handle.write(json.dumps(output.model_dump(mode="json"), indent=1))


def finished_output(plan: StagePlan) -> BaseModel | None:
    """The output its completion marker records, None without a marker or with one that
    does not parse as the stage's output (the stage then runs again)."""
    try:
        found = read_marker(plan.output_dir)
        return output_type(plan.stage).model_validate(found) if found else None
    except (ValueError, OSError):  # not JSON, not this stage's output, or unreadable now
        return None


def _restore_record(task_ctx: Any, plan: StagePlan) -> None:
    """Make this process's cache record of a stage that finished elsewhere from its marker."""
    store = task_ctx.result_store
    if store.exists(plan.cache_key):
        return
    output = finished_output(plan)
    if output is not None:
        store.write(obj=output, key=plan.cache_key)


def _drop_record(task_ctx: Any, key: str) -> None:
    store = task_ctx.result_store
    resolved = store._resolved_key_path(key)  # the storage path Prefect reads the record from
    fs, path = _fs(str(resolved))
    if fs.exists(path):
        fs.rm(path)


# The plan each task run's cache key came from, or the error planning raised, kept for that
# task run's body (`planned`): a stage's inputs are listed, fingerprinted and checked once
# per run. Bodies of cached task runs never take theirs, so only the newest are kept.
_PLANNED: OrderedDict[str, StagePlan | Exception] = OrderedDict()
_PLANNED_KEPT = 64


def planned(task_run_id: str | None, planner: Callable[..., StagePlan], *args: Any) -> StagePlan:
    """The plan the cache policy made for this task run (re-raising its planning error),
    else a new one."""
    found = _PLANNED.pop(str(task_run_id), None)
    if isinstance(found, Exception):
        raise found
    return found if found is not None else planner(*args)


def _keep_plan(task_run_id: str, plan: StagePlan | Exception) -> None:
    _PLANNED[task_run_id] = plan
    while len(_PLANNED) > _PLANNED_KEPT:
        _PLANNED.popitem(last=False)


@dataclass
class StageCache(CachePolicy):
    """Cache policy of a stage task: `planner(**task_inputs)` gives the stage's plan."""

    planner: Optional[Callable[..., StagePlan]] = None

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> Optional[str]:
        task_run_id = str(task_ctx.task_run.id)
        try:
            plan = self.planner(**inputs)
        except (ValueError, OSError) as exc:
            _keep_plan(task_run_id, exc)
            return None  # bad input: no caching; the task body raises the clear error
        _keep_plan(task_run_id, plan)
        if marker_exists(plan):
            _restore_record(task_ctx, plan)
        else:
            _drop_record(task_ctx, plan.cache_key)
        return plan.cache_key
