"""Runs against runs: the drift baseline of a new run, per-feature data distances between
two runs (`retrain runs data RUN --against OTHER`), and two runs side by side (`retrain runs
compare A B`, seed 003's "Compare with Other Runs").

Each function owns its session and returns views; TFDV loads only when distances are asked for.
"""

from __future__ import annotations

from typing import Any

from retrain.domain.data_gates import Comparison
from retrain.domain.refs import StatisticsBaseline
from retrain.domain.stages import Stage
from retrain.services.errors import NotFound
from retrain.services.runs import effective_config, live_run
from retrain.services.views import (
    ConfigChange,
    DataDistances,
    MetricDelta,
    RunComparison,
    RunRef,
)
from retrain.store import runs
from retrain.store.orm import TrainingRun
from retrain.store.sessions import sessions

_STATISTICS = "statistics"  # StatisticsGen's output key under its stage directory


def _statistics_uri(run: TrainingRun) -> str | None:
    for stage in run.stages:
        if stage.stage == Stage.STATISTICS_GEN and stage.output_uri:
            return f"{stage.output_uri.rstrip('/')}/{_STATISTICS}"
    return None


def drift_baseline(model_name: str) -> StatisticsBaseline | None:
    """The statistics a new run of `model_name` is compared with: those of the model's
    newest finished run (completed or not blessed), if it has one."""
    with sessions()() as session:
        run = runs.previous_finished_run(session, model_name)
        uri = _statistics_uri(run) if run is not None else None
        if uri is None:
            return None
        return StatisticsBaseline(run_id=run.id, label=f"{run.name} #{run.run_number}",
                                  statistics_uri=uri)


def _with_statistics(session, run_ref: str) -> tuple[RunRef, str]:
    run = live_run(session, run_ref)
    uri = _statistics_uri(run)
    ref = RunRef.of(run)
    if uri is None:
        raise NotFound(f"run {ref.label} has no statistics: StatisticsGen never finished")
    return ref, uri


def data_distances(run_ref: str, against_ref: str | None = None) -> DataDistances:
    """Per-feature drift distances of `run_ref`'s train split from `against_ref`'s (default:
    the model's newest finished run before it). NotFound when either has no statistics."""
    from retrain.adapters.tfdv_drift import feature_distances
    from retrain.adapters.tfdv_insights import load_split_statistics

    with sessions()() as session:
        ref, uri = _with_statistics(session, run_ref)
        if against_ref is None:
            previous = runs.previous_finished_run(session, ref.model_name, before=ref.run_number)
            if previous is None:
                raise NotFound(f"run {ref.label} has no earlier finished run of "
                               f"{ref.model_name} to compare with: name one with --against")
            against_ref = previous.id
        against, against_uri = _with_statistics(session, against_ref)
    current, other = (load_split_statistics(uri).get("train"),
                      load_split_statistics(against_uri).get("train"))
    if current is None or other is None:
        raise NotFound("both runs need a train split to be compared")
    names = [{".".join(f.path.step) or f.name for f in stats.datasets[0].features}
             for stats in (current, other)]
    return DataDistances(
        run=ref, against=against,
        distances=feature_distances(current, other, Comparison.DRIFT),
        only_in_run=sorted(names[0] - names[1]), only_in_against=sorted(names[1] - names[0]),
    )


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return flat
    return {prefix: value}


def _numbers(metrics: dict[str, Any] | None) -> dict[str, float]:
    return {name: float(value) for name, value in (metrics or {}).items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def compare_runs(a_ref: str, b_ref: str) -> RunComparison:
    """Runs A and B side by side: config differences, metrics with B - A, blessing rules,
    and B's train data against A's (when both have statistics)."""
    with sessions()() as session:
        a_run, b_run = live_run(session, a_ref), live_run(session, b_ref)
        a, b = RunRef.of(a_run), RunRef.of(b_run)
        a_config, b_config = (_flatten("", effective_config(a_run)),
                              _flatten("", effective_config(b_run)))
        a_metrics, b_metrics = _numbers(a_run.metrics), _numbers(b_run.metrics)
        rules = [list((run.blessing or {}).get("rules") or []) for run in (a_run, b_run)]
        blessed = (a_run.blessed, b_run.blessed)
    changes = [ConfigChange(path=path, a=a_config.get(path), b=b_config.get(path))
               for path in sorted(set(a_config) | set(b_config))
               if a_config.get(path) != b_config.get(path)]
    metrics = [MetricDelta(name=name, a=a_metrics.get(name), b=b_metrics.get(name))
               for name in sorted(set(a_metrics) | set(b_metrics))]
    data, note = None, None
    try:
        data = data_distances(b.id, a.id)
    except NotFound as exc:
        note = str(exc)
    return RunComparison(a=a, b=b, config_changes=changes, metrics=metrics, rules_a=rules[0],
                         rules_b=rules[1], blessed=blessed, data=data, data_note=note)
