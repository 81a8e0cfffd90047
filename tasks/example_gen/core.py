"""ExampleGen: raw files (CSV, Parquet, TFRecord) or BigQuery → tf.Example splits."""

from __future__ import annotations

from tasks.shared.caching import StagePlan
from retrain.domain.config import InputConfig, PipelineConfig
from tasks.shared.fingerprint import InputDataError, fingerprint, list_data_files
from retrain.domain.refs import StageOutput
from retrain.adapters.gcs import check_locations
from retrain.adapters.tfx import proto_json, run_executor
from retrain.domain.progress import ProgressUnit, reporter
from retrain.domain.stages import Stage

STAGE = Stage.EXAMPLE_GEN

EXECUTORS = {
    "csv": "tfx.components.example_gen.csv_example_gen.executor.Executor",
    "parquet": "tfx.components.example_gen.custom_executors.parquet_executor.Executor",
    "tfrecord": "tfx.components.example_gen.import_example_gen.executor.Executor",
    "bigquery": "tfx.extensions.google_cloud_big_query.example_gen.executor.Executor",
}
TIME_HOLDOUT_EXECUTORS = {
    fmt: f"tasks.example_gen.time_holdout.{fmt.capitalize()}TimeHoldoutExecutor"
    for fmt in ("csv", "parquet", "tfrecord", "bigquery")
}


def input_files(source: InputConfig) -> list[str]:
    """Data files this run reads (none for BigQuery, whose query is the input)."""
    if source.format == "bigquery":
        return []
    return list_data_files(source.uri, source.pattern)


STREAMING_FORMATS = ("csv", "parquet", "tfrecord")


def streams(config: PipelineConfig) -> bool:
    """True when this run's ExampleGen takes the streaming path.

    BigQuery input and the time-holdout split (which needs the latest timestamp before it
    can split anything) stay on TFX's Beam executors.
    """
    source = config.input
    return (config.streaming and source.format in STREAMING_FORMATS
            and source.split.strategy == "hash")


def plan(config: PipelineConfig) -> StagePlan:
    """Fingerprint: the input config, the path that runs, the content of every data file.

    First, each gs:// location of the run answers (one listing each, no retries), so no
    credentials, a missing bucket or a refused permission stops the run here in one line.
    """
    check_locations(config.storage_locations(), inputs=("input.uri",))
    files = input_files(config.input)
    parts = {"input": config.input, "streaming": streams(config)}
    fp = fingerprint(STAGE, parts, files)
    return StagePlan.for_stage(config, STAGE, fp, inputs=tuple(files))


def check_not_empty(source: InputConfig, files: list[str]) -> None:
    """Refuse input whose files hold no rows, before Beam starts (cheap: headers/footers)."""
    if source.format == "csv":
        import fsspec

        for path in files:
            with fsspec.open(path, "rt") as handle:
                header = handle.readline()
                if header.strip() and any(line.strip() for line in handle):
                    return
    elif source.format == "parquet":
        import fsspec
        import pyarrow.parquet as pq

        for path in files:
            with fsspec.open(path, "rb") as handle:
                if pq.ParquetFile(handle).metadata.num_rows > 0:
                    return
    else:
        import fsspec

        fs = fsspec.core.url_to_fs(files[0])[0]
        if any(fs.size(path) > 0 for path in files):
            return
    raise InputDataError(source.empty_message(len(files)))


def split_configs(source: InputConfig) -> tuple[str, str]:
    """TFX Input/Output protos as JSON: one input split, train/eval output splits."""
    from tfx.proto import example_gen_pb2

    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name="single_split", pattern=source.pattern)]
    )
    if source.format == "bigquery":
        input_config.splits[0].pattern = source.query or ""
    split = source.split
    output_config = example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=split.train_buckets),
                example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=split.eval_buckets),
            ],
        )
    )
    if split.partition_feature:
        output_config.split_config.partition_feature_name = split.partition_feature
    return proto_json(input_config), proto_json(output_config)


def run(plan: StagePlan, config: PipelineConfig) -> StageOutput:
    """Write train/eval Examples: streaming, or the format's TFX ExampleGen executor."""
    source = config.input
    files = list(plan.inputs)  # listed once, by the plan
    if files:
        check_not_empty(source, files)
    if streams(config):
        return run_streaming(plan, config, files)
    return run_beam(plan, config)


def run_streaming(plan: StagePlan, config: PipelineConfig, files: list[str]) -> StageOutput:
    """Stream the files through worker processes into sharded gzipped TFRecords.

    The split is TFX's: sha256 of each example's deterministic serialization (or of the
    partition feature) into the configured hash buckets, so rows land where TFX puts them.
    """
    from tfx.dsl.io import fileio

    from retrain.adapters.streaming.csv_units import DataFormatError
    from retrain.adapters.streaming.example_gen import SplitRule, generate_examples

    split = config.input.split
    rule = SplitRule(names=("train", "eval"), buckets=(split.train_buckets, split.eval_buckets),
                     partition_feature=split.partition_feature)
    if fileio.exists(plan.output_dir):
        fileio.rmtree(plan.output_dir)
    try:
        examples, _rows = generate_examples(
            config.input.format, files, f"{plan.output_dir}/examples", rule,
            workers=config.data.workers, unit_bytes=config.data.unit_mb << 20,
            progress=reporter(ProgressUnit.BYTES, "read"),
        )
    except DataFormatError as exc:
        raise InputDataError(str(exc)) from None
    return StageOutput(stage=STAGE, fingerprint=plan.fingerprint, artifacts={"examples": examples})


def run_beam(plan: StagePlan, config: PipelineConfig) -> StageOutput:
    """TFX's ExampleGen executor for the format, with the run's Beam args."""
    source = config.input
    from tfx.proto import example_gen_pb2

    input_json, output_json = split_configs(source)
    exec_properties = {
        "input_base": source.uri,
        "input_config": input_json,
        "output_config": output_json,
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        "span": 0,
        "version": None,
        "input_fingerprint": plan.fingerprint,
    }
    if source.split.strategy == "time_holdout":
        exec_properties["timestamp_column"] = source.split.timestamp_column
        exec_properties["holdout_days"] = source.split.holdout_days
        executor = TIME_HOLDOUT_EXECUTORS[source.format]
    else:
        executor = EXECUTORS[source.format]
    try:
        artifacts = run_executor(
            executor,
            inputs={},
            outputs={"examples": "Examples"},
            exec_properties=exec_properties,
            output_dir=plan.output_dir,
            beam_args=config.beam.args,
        )
    except Exception as exc:
        if "Columns do not match specified csv headers" in str(exc):
            detail = str(exc).split("headers:", 1)[1].split("[while running")[0].strip()
            raise InputDataError(
                f"malformed CSV row (column count differs from header): {detail}"
            ) from exc
        raise
    return StageOutput(stage=STAGE, fingerprint=plan.fingerprint, artifacts=artifacts)
