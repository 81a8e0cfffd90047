"""Evaluator: TFMA metrics and the blessing, against the champion model when there is one.

Beside TFMA's (or the recommender evaluator's) thresholds, each thresholded metric that has a
trivial predictor (`trivial.py`) must beat it on the same eval rows: a `trivial_baseline`
rule. On the TFMA path a failed one turns TFMA's BLESSED into NOT_BLESSED.
"""

from __future__ import annotations

import json
from pathlib import Path

from tasks.shared.caching import StagePlan
from retrain.domain.config import EvaluatorConfig, PipelineConfig
from tasks.shared.fingerprint import fingerprint
from retrain.domain.refs import (
    ArtifactRef,
    Blessing,
    EvaluationOutput,
    FloorMetric,
    RuleResult,
    StageOutput,
)
from retrain.adapters.tfx import proto_json, run_executor
from retrain.domain.stages import Stage

STAGE = Stage.EVALUATOR
EXECUTOR = "tfx.components.evaluator.executor.Executor"
RECOMMENDER_EXECUTOR = "tasks.evaluator.executor.Executor"
# TFMA compares with a strict inequality; this lets 'equal to the baseline' pass.
_TIE = 1e-10


def comparable_baseline(baseline: ArtifactRef | None, trainer: StageOutput) -> ArtifactRef | None:
    """The baseline to compare with; a model is never compared with itself.

    When an identical re-run finds its own model already serving, the evaluation it had
    when it was first blessed stands (and hits the cache).
    """
    if baseline is not None and baseline.uri == trainer["model"].uri:
        return None
    return baseline


def plan(
    config: PipelineConfig,
    examples: StageOutput,
    transform: StageOutput,
    trainer: StageOutput,
    schema: StageOutput,
    baseline: ArtifactRef | None,
) -> StagePlan:
    """Fingerprint: examples, transform (the trivial predictors' labels), model, schema,
    blessing rules and the baseline model."""
    baseline = comparable_baseline(baseline, trainer)
    parts = {
        "examples": examples.fingerprint,
        "transform": transform.fingerprint,
        "model": trainer.fingerprint,
        "schema": schema.fingerprint,
        "evaluator": config.evaluator,
        "model_type": config.model.type if config.model else None,
        "baseline": baseline.uri if baseline else None,
    }
    files = [str(Path(__file__).with_name(name)) for name in _SOURCES]
    return StagePlan.for_stage(config, STAGE, fingerprint(STAGE, parts, files))


# The evaluator's own code (recommender metrics, blessing rules, trivial predictors) is part
# of the Evaluator's cache key.
_SOURCES = ("core.py", "executor.py", "metrics.py", "blessing.py", "trivial.py", "columns.py",
            "labels.py")


def build_eval_config(config: EvaluatorConfig):
    """The TFMA EvalConfig proto for the typed evaluator config."""
    from tensorflow_model_analysis.proto import config_pb2

    metrics = []
    if not any(metric.class_name == "ExampleCount" for metric in config.metrics):
        metrics.append(config_pb2.MetricConfig(class_name="ExampleCount"))
    for metric in config.metrics:
        threshold = config_pb2.MetricThreshold()
        if metric.lower_bound is not None:
            threshold.value_threshold.lower_bound.value = metric.lower_bound
        if metric.upper_bound is not None:
            threshold.value_threshold.upper_bound.value = metric.upper_bound
        if metric.max_regression is not None or metric.relative_tolerance is not None:
            change = threshold.change_threshold
            sign = -1.0 if metric.better_higher else 1.0
            change.direction = (
                config_pb2.MetricDirection.HIGHER_IS_BETTER
                if metric.better_higher
                else config_pb2.MetricDirection.LOWER_IS_BETTER
            )
            if metric.max_regression is not None:
                change.absolute.value = sign * (metric.max_regression + _TIE)
            if metric.relative_tolerance is not None:
                change.relative.value = sign * (metric.relative_tolerance + _TIE)
        metric_config = config_pb2.MetricConfig(class_name=metric.class_name)
        if threshold.ByteSize():
            metric_config.threshold.CopyFrom(threshold)
        metrics.append(metric_config)
    return config_pb2.EvalConfig(
        model_specs=[
            config_pb2.ModelSpec(
                signature_name=config.signature_name,
                label_key=config.label_key,
                preprocessing_function_names=config.preprocessing_function_names,
            )
        ],
        slicing_specs=[config_pb2.SlicingSpec()]
        + [config_pb2.SlicingSpec(feature_keys=keys) for keys in config.slicing_features],
        metrics_specs=[config_pb2.MetricsSpec(metrics=metrics)],
    )


def overall_metrics(evaluation_uri: str) -> dict[str, float]:
    """Candidate metrics of the overall slice."""
    import tensorflow_model_analysis as tfma

    values: dict[str, float] = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.slice_key.single_slice_keys:
            continue
        for item in per_slice.metric_keys_and_values:
            key = item.key
            if key.is_diff or key.model_name not in ("", "candidate"):
                continue
            if item.value.HasField("double_value"):
                values[key.name] = float(item.value.double_value.value)
    return values


def failed_checks(evaluation_uri: str) -> list[str]:
    """Threshold failures as TFMA reports them."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(evaluation_uri)
    lines = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            lines.append(f"{failure.metric_key.name}: {failure.message}".strip())
    return lines


def run(
    plan: StagePlan,
    config: PipelineConfig,
    examples: StageOutput,
    transform: StageOutput,
    trainer: StageOutput,
    schema: StageOutput,
    baseline: ArtifactRef | None,
) -> EvaluationOutput:
    """Evaluate and bless: TFMA for user modules, the recommender evaluator for `model`.
    A champion of another model type is not compared with (`other_type`)."""
    baseline = comparable_baseline(baseline, trainer)
    mismatch = other_type(baseline, config)
    if mismatch is not None:
        baseline = None
    if config.model is not None:
        output = _run_recommender(plan, config, examples, transform, trainer, baseline)
    else:
        output = _run_tfma(plan, config, examples, transform, trainer, schema, baseline)
    return output if mismatch is None else _hold_back(output, mismatch, config)


def other_type(baseline: ArtifactRef | None, config: PipelineConfig) -> str | None:
    """Why the champion cannot be this run's baseline: it is a model of another type (other
    metrics, another serving signature). None when it can be, or its type is unknown."""
    kind = config.model_type.value
    champion_type = getattr(baseline, "model_type", None)
    if baseline is None or champion_type in (None, kind):
        return None
    return (f"the champion (version {getattr(baseline, 'version', None)}) is a "
            f"{champion_type} model and this one a {kind} model: not compared, and not "
            "pushed in its place (the serving signature would change); set "
            "evaluator.force_bless with a reason to replace it, or use another model_name")


def _hold_back(output: EvaluationOutput, mismatch: str, config: PipelineConfig
               ) -> EvaluationOutput:
    """The evaluation without a baseline, with a `model_type` rule in place of `first_run`:
    failed (and not blessed) unless the run is force-blessed."""
    blessing = output.blessing or Blessing(blessed=output.blessed, rules=[])
    rules = [rule for rule in blessing.rules if rule.rule != "first_run"]
    if config.evaluator.force_bless is not None:
        rule = RuleResult(metric="*", rule="model_type", passed=True,
                          message=mismatch.split(": not compared")[0] + ": replaced (forced)")
        return output.model_copy(update={"blessing": blessing.model_copy(
            update={"rules": [rule, *rules]})})
    rule = RuleResult(metric="*", rule="model_type", passed=False, message=mismatch)
    artifacts = dict(output.artifacts)
    if output.blessed:
        artifacts["blessing"] = withhold_blessing(artifacts["blessing"], mismatch)
    return output.model_copy(update={
        "blessed": False, "artifacts": artifacts,
        "failed_checks": [mismatch, *output.failed_checks],
        "blessing": blessing.model_copy(update={"blessed": False, "rules": [rule, *rules]})})


def _run_tfma(
    plan: StagePlan,
    config: PipelineConfig,
    examples: StageOutput,
    transform: StageOutput,
    trainer: StageOutput,
    schema: StageOutput,
    baseline: ArtifactRef | None,
) -> EvaluationOutput:
    artifacts = run_executor(
        EXECUTOR,
        inputs={
            "examples": examples["examples"],
            "model": trainer["model"],
            "baseline_model": baseline,
            "schema": schema["schema"],
        },
        outputs={"evaluation": "ModelEvaluation", "blessing": "ModelBlessing"},
        exec_properties={
            "eval_config": proto_json(build_eval_config(config.evaluator)),
            "example_splits": json.dumps(config.evaluator.example_splits),
            "fairness_indicator_thresholds": "null",
        },
        output_dir=plan.output_dir,
        beam_args=config.beam.args,
    )
    from tfx.dsl.io import fileio

    tfma_blessed = fileio.exists(f"{artifacts['blessing'].uri}/BLESSED")
    evaluation_uri = artifacts["evaluation"].uri
    metrics = overall_metrics(evaluation_uri)
    failed = [] if tfma_blessed else failed_checks(evaluation_uri)
    rules, floors = _trivial_rules(config, examples, transform, metrics)
    trivial_failed = [rule.message for rule in rules if not rule.passed]
    failed += trivial_failed
    blessed = tfma_blessed and not trivial_failed
    force = config.evaluator.force_bless
    if force is not None:
        artifacts["blessing"] = force_blessing(artifacts["blessing"], force.reason)
        rules.append(RuleResult(metric="*", rule="force_bless", passed=True,
                                message=f"forced: {force.reason}"
                                + (f" (overrides: {'; '.join(failed)})" if failed else "")))
        blessed = True
    elif tfma_blessed and not blessed:
        artifacts["blessing"] = withhold_blessing(artifacts["blessing"], "; ".join(trivial_failed))
    blessing = None
    if rules:
        blessing = Blessing(blessed=blessed, rules=rules,
                            forced_reason=force.reason if force is not None else None,
                            baseline_version=getattr(baseline, "version", None))
    return EvaluationOutput(
        stage=STAGE,
        fingerprint=plan.fingerprint,
        artifacts=artifacts,
        blessed=blessed,
        metrics=metrics,
        baseline_model_uri=baseline.uri if baseline else None,
        failed_checks=failed,
        blessing=blessing,
        floors=floors,
    )


def _mark(blessing: ArtifactRef, blessed: bool, reason_property: str, reason: str) -> ArtifactRef:
    """Rewrite a ModelBlessing's marker file and `blessed` property, recording the reason."""
    from tfx.dsl.io import fileio

    artifact = blessing.to_tfx()
    marker, other = ("BLESSED", "NOT_BLESSED") if blessed else ("NOT_BLESSED", "BLESSED")
    if fileio.exists(f"{artifact.uri}/{other}"):
        fileio.remove(f"{artifact.uri}/{other}")
    with fileio.open(f"{artifact.uri}/{marker}", "w") as handle:
        handle.write("")
    artifact.set_int_custom_property("blessed", int(blessed))
    artifact.set_string_custom_property(reason_property, reason)
    return ArtifactRef.from_tfx(artifact)


def force_blessing(blessing: ArtifactRef, reason: str) -> ArtifactRef:
    """Turn a TFMA NOT_BLESSED into BLESSED, recording the reason on the artifact."""
    return _mark(blessing, True, "forced_reason", reason)


def withhold_blessing(blessing: ArtifactRef, reason: str) -> ArtifactRef:
    """Turn a TFMA BLESSED into NOT_BLESSED (a trivial_baseline rule failed), recording why
    on the artifact; TFX's Pusher then pushes nothing. The mirror of `force_blessing`."""
    return _mark(blessing, False, "withheld_reason", reason)


def _trivial_rules(config: PipelineConfig, examples: StageOutput, transform: StageOutput,
                   metrics: dict[str, float]) -> tuple[list[RuleResult], list[FloorMetric]]:
    """The TFMA path's trivial_baseline rules, from the label column (`labels.py`), and the
    trivial predictors' values they compared with."""
    from tasks.evaluator.blessing import trivial_rules
    from tasks.evaluator.trivial import predictor_for, tfma_key

    evaluator = config.evaluator
    names = [metric.class_name for metric in evaluator.metrics
             if predictor_for(metric.class_name) is not None]
    if not evaluator.trivial_baseline.enabled or not names:
        return [], []
    from tasks.evaluator.labels import trivial_label_metrics

    transformed = transform.artifacts.get("transformed_examples")
    trivial_metrics = trivial_label_metrics(
        names, evaluator.label_key, transform["transform_graph"].uri,
        transformed.uri if transformed else None, examples["examples"].uri,
        evaluator.example_splits, evaluator.batch_size,
    )
    candidate = {name: metrics[tfma_key(name)] for name in names if tfma_key(name) in metrics}
    rules = trivial_rules(evaluator.metrics, candidate, trivial_metrics,
                          evaluator.trivial_baseline)
    return rules, floor_metrics({tfma_key(name): value for name, value in trivial_metrics.items()},
                                names=dict((tfma_key(name), name) for name in trivial_metrics))


def _run_recommender(
    plan: StagePlan,
    config: PipelineConfig,
    examples: StageOutput,
    transform: StageOutput,
    trainer: StageOutput,
    baseline: ArtifactRef | None,
) -> EvaluationOutput:
    from tasks.evaluator.blessing import failed_lines
    from tasks.evaluator.executor import RecommenderEvalSpec, read_evaluation

    features = config.features
    spec = RecommenderEvalSpec(
        model=config.model, evaluator=config.evaluator,
        baseline_version=getattr(baseline, "version", None),
        candidate_column=features.candidate_id_feature.name if features else None,
        target_column=features.target.column if features and features.target else None,
    )
    artifacts = run_executor(
        RECOMMENDER_EXECUTOR,
        inputs={"examples": examples["examples"], "model": trainer["model"],
                "transform_graph": transform["transform_graph"],
                "baseline_model": baseline},
        outputs={"evaluation": "ModelEvaluation", "blessing": "ModelBlessing"},
        exec_properties={
            "recommender": spec.model_dump_json(),
            "example_splits": json.dumps(config.evaluator.example_splits),
        },
        output_dir=plan.output_dir,
    )
    result = read_evaluation(artifacts["evaluation"].uri)
    blessing = Blessing.model_validate(result["blessing"])
    return EvaluationOutput(
        stage=STAGE,
        fingerprint=plan.fingerprint,
        artifacts=artifacts,
        blessed=blessing.blessed,
        metrics=result["metrics"],
        baseline_model_uri=baseline.uri if baseline else None,
        failed_checks=[] if blessing.blessed else failed_lines(blessing),
        blessing=blessing,
        floors=floor_metrics(result.get("trivial_metrics") or {}),
    )


def floor_metrics(values: dict[str, float], names: dict[str, str] | None = None
                  ) -> list[FloorMetric]:
    """The trivial predictors' values keyed by metric, with the predictor that scored each
    (`names`: the metric's config name where it differs from its key, e.g. BinaryAccuracy)."""
    from tasks.evaluator.trivial import predictor_for

    floors = []
    for metric, value in sorted(values.items()):
        predictor = predictor_for((names or {}).get(metric, metric))
        if predictor is not None:
            floors.append(FloorMetric(metric=metric, value=float(value),
                                      predictor=predictor.value))
    return floors
