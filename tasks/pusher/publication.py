"""Publication of a push: a model card and a STAC Item (MLM extension), written beside the
pushed SavedModel and logged to the push's MLflow run.

`<serving_base>/<model>/<version>/model_card.md` and `.../stac_item.json` sit next to
`saved_model.pb` (TF Serving and the SavedModel loader ignore other files there). The item
is validated against the vendored MLM schema before anything is written.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from retrain.adapters import mlflow_registry as registry
from retrain.adapters.saved_model import count_parameters, read_signatures
from retrain.adapters.stac_mlm import stac_item, validate_stac_item
from retrain.domain.config import PipelineConfig
from retrain.domain.evaluation import higher_is_better
from retrain.domain.publication import (
    BlessingRuleLine,
    MetricVsChampion,
    PublicationFacts,
    SplitSummary,
    model_card,
)
from retrain.domain.recommender import ModelType
from retrain.domain.refs import EvaluationOutput, PushOutput, StatisticsOutput

CARD = "model_card.md"
ITEM = "stac_item.json"


class Published(BaseModel):
    """Where a push's model card and STAC item were written."""

    card_uri: str = Field(description="The model card (markdown).")
    item_uri: str = Field(description="The STAC Item (JSON, MLM extension).")


def facts(config: PipelineConfig, push: PushOutput, evaluation: EvaluationOutput,
          statistics: StatisticsOutput | None, *, run_id: str, run_name: str,
          flow_run_id: str | None, champion_version: str | None) -> PublicationFacts:
    """What the card and the item say, from the run's references and the pushed model."""
    import tensorflow as tf

    blessing = evaluation.blessing
    baseline = (blessing.baseline_metrics if blessing else None) or {}
    return PublicationFacts(
        model_name=config.model_name,
        model_type=config.model.type if config.model is not None else ModelType.USER_MODULE,
        registered_version=push.registered_version, serving_version=push.version,
        serving_uri=push.serving_uri, run_name=run_name, run_id=run_id,
        flow_run_id=flow_run_id or None, mlflow_run_id=push.mlflow_run_id,
        pushed_at=dt.datetime.now(dt.timezone.utc), framework_version=tf.__version__,
        signatures=read_signatures(push.serving_uri),
        hyperparameters=registry.flat_params(config),
        training_data_uri=config.input.uri or (config.input.query or ""),
        training_data_format=config.input.format,
        splits=[SplitSummary(name=name, rows=split.rows, missing_pct=split.missing_pct)
                for name, split in sorted((statistics.splits if statistics else {}).items())],
        feature_names=sorted(statistics.feature_names) if statistics else [],
        metrics=[MetricVsChampion(name=name, value=value, champion=baseline.get(name),
                                  higher_is_better=higher_is_better(
                                      name, config.evaluator.metrics))
                 for name, value in sorted(evaluation.metrics.items())],
        champion_version=champion_version,
        blessing_rules=[BlessingRuleLine(metric=rule.metric, passed=rule.passed,
                                         message=rule.message)
                        for rule in (blessing.rules if blessing else [])],
        forced_reason=blessing.forced_reason if blessing else None,
        total_parameters=count_parameters(push.serving_uri),
    )


def publish(publication: PublicationFacts) -> Published:
    """Write the card and the (validated) item beside the model; log both to MLflow."""
    import fsspec

    base = publication.serving_uri.rstrip("/")
    card_uri, item_uri = f"{base}/{CARD}", f"{base}/{ITEM}"
    card = model_card(publication)
    item = stac_item(publication, model_href=base, card_href=card_uri)
    validate_stac_item(item)
    texts = {CARD: card, ITEM: json.dumps(item, indent=1, sort_keys=True)}
    for name, uri in ((CARD, card_uri), (ITEM, item_uri)):
        with fsspec.open(uri, "w") as handle:
            handle.write(texts[name])
    if publication.mlflow_run_id:
        with tempfile.TemporaryDirectory() as local:
            paths = []
            for name, text in texts.items():
                (Path(local) / name).write_text(text)
                paths.append(str(Path(local) / name))
            registry.log_files(publication.mlflow_run_id, paths, "publication")
    return Published(card_uri=card_uri, item_uri=item_uri)
