"""StatisticsGen: TFDV statistics per split, a small summary and the full HTML report."""

from __future__ import annotations

from tasks.shared.caching import StagePlan
from retrain.domain.config import PipelineConfig
from tasks.shared.fingerprint import fingerprint
from retrain.domain.refs import SplitStats, StageOutput, StatisticsOutput
from retrain.adapters.tfx import run_executor
from retrain.domain.progress import ProgressUnit, reporter
from retrain.domain.stages import Stage

STAGE = Stage.STATISTICS_GEN
EXECUTOR = "tfx.components.statistics_gen.executor.Executor"


def plan(config: PipelineConfig, examples: StageOutput) -> StagePlan:
    """Fingerprint: the examples, the label the run expects, the path that runs."""
    parts = {"examples": examples.fingerprint, "label": config.label_column,
             "streaming": config.streaming}
    fp = fingerprint(STAGE, parts)
    return StagePlan.for_stage(config, STAGE, fp)


def summarize_split(stats_list) -> SplitStats:
    """Rows, feature count and missing percentages from one split's statistics proto."""
    dataset = stats_list.datasets[0]
    rows = int(dataset.num_examples)
    missing = {}
    for feature in dataset.features:
        which = feature.WhichOneof("stats")
        common = getattr(feature, which).common_stats if which else None
        if common is not None and rows and common.num_missing:
            name = feature.path.step[-1] if feature.path.step else feature.name
            missing[name] = round(100.0 * common.num_missing / rows, 2)
    return SplitStats(rows=rows, features=len(dataset.features), missing_pct=missing)


def feature_names(stats_list) -> list[str]:
    """Names of every feature in a statistics proto."""
    names = []
    for feature in stats_list.datasets[0].features:
        names.append(feature.path.step[-1] if feature.path.step else feature.name)
    return sorted(names)


def check_splits(splits: dict[str, SplitStats], names: list[str], label: str | None) -> None:
    """Fail on empty splits and on a label column the data does not have."""
    empty = [split for split, stats in splits.items() if stats.rows == 0]
    if empty:
        raise ValueError(f"split(s) {empty} have no rows; check the input data and split config")
    if label is not None and label not in names:
        raise ValueError(f"label column {label!r} does not exist in the data; columns: {names}")


def run(plan: StagePlan, config: PipelineConfig, examples: StageOutput) -> StatisticsOutput:
    """Compute statistics with TFDV, summarise them and write the HTML report beside them.

    Streaming: TFDV's combiners over each shard in worker processes, merged here (unique
    counts from TFDV's sketch); otherwise TFX's StatisticsGen executor on Beam.
    """
    if config.streaming:
        from tfx.dsl.io import fileio

        from retrain.adapters.streaming.statistics import generate_statistics

        if fileio.exists(plan.output_dir):
            fileio.rmtree(plan.output_dir)
        artifacts = {"statistics": generate_statistics(
            examples["examples"], f"{plan.output_dir}/statistics", workers=config.data.workers,
            progress=reporter(ProgressUnit.BYTES, "of examples summarised"),
            unit_bytes=config.data.unit_mb << 20,
        )}
    else:
        artifacts = run_executor(
            EXECUTOR,
            inputs={"examples": examples["examples"]},
            outputs={"statistics": "ExampleStatistics"},
            exec_properties={"exclude_splits": "[]"},
            output_dir=plan.output_dir,
            beam_args=config.beam.args,
        )
    from tensorflow_data_validation.utils import display_util
    from tfx.components.statistics_gen import stats_artifact_utils
    from tfx.dsl.io import fileio

    stats_artifact = artifacts["statistics"].to_tfx()
    splits, names, protos = {}, [], []
    for split in artifacts["statistics"].split_names:
        proto = stats_artifact_utils.load_statistics(stats_artifact, split).proto()
        splits[split] = summarize_split(proto)
        names = sorted(set(names) | set(feature_names(proto)))
        protos.append((split, proto))
    check_splits(splits, names, config.label_column)

    html = display_util.get_statistics_html(
        protos[0][1], lhs_name=protos[0][0],
        rhs_statistics=protos[1][1] if len(protos) > 1 else None,
        rhs_name=protos[1][0] if len(protos) > 1 else "",
    )
    report = f"{plan.output_dir}/statistics_report.html"
    with fileio.open(report, "w") as handle:
        handle.write(html)
    return StatisticsOutput(
        stage=STAGE, fingerprint=plan.fingerprint, artifacts=artifacts,
        splits=splits, feature_names=names, html_report=report,
    )
