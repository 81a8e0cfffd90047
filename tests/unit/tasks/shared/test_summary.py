"""The end-of-run summary a user reads in the Prefect UI and the terminal."""

from __future__ import annotations

from retrain.domain.evaluation import MetricThreshold
from retrain.domain.refs import (
    Blessing,
    EpochMetrics,
    EvaluationOutput,
    PushOutput,
    SplitStats,
    StatisticsOutput,
    TrainerOutput,
    ValidationOutput,
)
from tasks.shared.summary import StageTiming, build_summary, render_markdown, render_text


def _summary(pushed: bool):
    stats = StatisticsOutput(
        stage="StatisticsGen", fingerprint="f", artifacts={},
        splits={"train": SplitStats(rows=80, features=7), "eval": SplitStats(rows=20, features=7)},
        feature_names=["a"], html_report="/r/report.html",
    )
    validation = ValidationOutput(
        stage="ExampleValidator", fingerprint="f", artifacts={},
        anomalies={"eval": ["city: Unexpected string values"]},
    )
    evaluation = EvaluationOutput(
        stage="Evaluator", fingerprint="f", artifacts={}, blessed=pushed,
        metrics={"binary_accuracy": 0.781234}, baseline_model_uri="/root/Trainer/x/model",
        failed_checks=[] if pushed else ["binary_accuracy: below 0.9"],
    )
    push = PushOutput(
        stage="Pusher", fingerprint="f", artifacts={}, pushed=pushed,
        reason="blessed" if pushed else "model not blessed: binary_accuracy: below 0.9",
        serving_uri="/serving/m/17" if pushed else None, version="17" if pushed else None,
        mlflow_run_id="run1" if pushed else None, registered_version="3" if pushed else None,
    )
    timings = [StageTiming(stage="ExampleGen", state="Cached", seconds=0.1),
               StageTiming(stage="Trainer", state="Completed", seconds=61.5)]
    return build_summary("m", timings, stats, validation, evaluation, push)


def test_pushed_run_summary():
    summary = _summary(pushed=True)
    assert summary.outcome == "pushed" and summary.cached_stages == ["ExampleGen"]
    md = render_markdown(summary)
    assert "| Trainer | Completed | 61.5 |" in md
    assert "Cache hits: ExampleGen" in md
    assert "| train | 80 |" in md and "[eval] city: Unexpected string values" in md
    assert "| binary_accuracy | 0.7812 |" in md
    assert "Pushed to `/serving/m/17`" in md and "registered version 3" in md
    assert "/root/Trainer/x/model" in md
    text = render_text(summary)
    assert "pushed: /serving/m/17" in text and "train=80, eval=20" in text


def test_not_blessed_summary_says_why_and_nothing_was_pushed():
    summary = _summary(pushed=False)
    assert summary.outcome == "not_blessed"
    md = render_markdown(summary)
    assert "Not pushed: model not blessed: binary_accuracy: below 0.9" in md
    assert "- failed: binary_accuracy: below 0.9" in md
    assert "not pushed:" in render_text(summary)


def test_summary_compares_with_the_champion_and_shows_the_training_curve():
    stats = StatisticsOutput(stage="StatisticsGen", fingerprint="f", artifacts={},
                             splits={"train": SplitStats(rows=80, features=7)},
                             feature_names=["a"], html_report="/r/report.html")
    validation = ValidationOutput(stage="ExampleValidator", fingerprint="f", artifacts={},
                                  anomalies={})
    blessing = Blessing(blessed=True, rules=[], baseline_version="4",
                        baseline_metrics={"rmse": 0.9, "recall_at_10": 0.25})
    evaluation = EvaluationOutput(
        stage="Evaluator", fingerprint="f", artifacts={}, blessed=True, blessing=blessing,
        metrics={"rmse": 0.8, "recall_at_10": 0.2, "example_count": 20.0},
        baseline_model_uri="/root/Trainer/x/model")
    push = PushOutput(stage="Pusher", fingerprint="f", artifacts={}, pushed=False, reason="r")
    epochs = [EpochMetrics(epoch=n, total_epochs=4, seconds=2.0,
                           metrics={"loss": 4.0 - n, "val_loss": 5.0 - n}) for n in (1, 2)]
    trainer = TrainerOutput(stage="Trainer", fingerprint="f", artifacts={}, epochs=epochs,
                            best_epoch=1, best_epoch_metric="val_rmse")
    # a configured direction wins over the name: here a higher recall_at_10 is *worse*
    thresholds = [MetricThreshold(class_name="recall_at_10", higher_is_better=False)]
    summary = build_summary("m", [], stats, validation, evaluation, push, trainer, thresholds)
    verdicts = {c.metric: (c.champion, c.verdict) for c in summary.comparison}
    assert verdicts == {"rmse": (0.9, "better"), "recall_at_10": (0.25, "better"),
                        "example_count": (None, "")}
    md = render_markdown(summary)
    assert "| metric | value | champion (v4) | delta | |" in md
    assert "| rmse | 0.8000 | 0.9000 | -0.1000 | better |" in md
    assert "| example_count | 20.0000 | — |  |  |" in md
    assert "2 of 4 epochs. Exported: epoch 1, the best by val_rmse." in md
    assert "| epoch | loss | val_loss | seconds |" in md and "| 2 | 2 | 3 | 2 |" in md
    assert "against champion v4: recall_at_10 -0.0500 (better), rmse -0.1000 (better)" \
        in render_text(summary)
    # a posterior fit's records are blocks of sampling steps, and the curve says so
    sampled = trainer.model_copy(update={"fit": "posterior", "best_epoch_metric": None})
    md = render_markdown(build_summary("m", [], stats, validation, evaluation, push, sampled,
                                       thresholds))
    assert "2 of 4 blocks of Langevin steps (posterior fit: the model served is the mean" in md
    assert "epochs." not in md


def test_summary_puts_each_metric_beside_its_floor():
    """The trivial predictors' values on the same eval rows: the floor a model must beat."""
    from retrain.domain.refs import FloorMetric

    stats = StatisticsOutput(stage="StatisticsGen", fingerprint="f", artifacts={},
                             splits={"eval": SplitStats(rows=20, features=7)},
                             feature_names=["a"], html_report="/r/report.html")
    validation = ValidationOutput(stage="ExampleValidator", fingerprint="f", artifacts={},
                                  anomalies={})
    popular = "most-popular-items predictor"
    evaluation = EvaluationOutput(
        stage="Evaluator", fingerprint="f", artifacts={}, blessed=True,
        metrics={"recall_at_10": 0.25, "recall_at_100": 0.8348, "rmse": 0.61},
        baseline_model_uri=None,
        floors=[FloorMetric(metric="recall_at_10", value=0.12, predictor=popular),
                FloorMetric(metric="recall_at_100", value=0.7956, predictor=popular),
                FloorMetric(metric="rmse", value=0.79, predictor="train-mean predictor"),
                FloorMetric(metric="recall_at_50", value=0.5, predictor=popular)])
    push = PushOutput(stage="Pusher", fingerprint="f", artifacts={}, pushed=False, reason="r")
    summary = build_summary("m", [], stats, validation, evaluation, push)
    text = render_text(summary)
    # recall_at_50 was not measured for the model: no floor to put it beside
    assert ("  floor: recall_at_10 0.2500 vs 0.1200, recall_at_100 0.8348 vs 0.7956 "
            "(most-popular-items predictor)") in text.splitlines()
    assert "  floor: rmse 0.6100 vs 0.7900 (train-mean predictor)" in text.splitlines()
    md = render_markdown(summary)
    assert ("Floor on the same eval rows: recall_at_10 0.2500 vs 0.1200, recall_at_100 0.8348 "
            "vs 0.7956 (most-popular-items predictor).") in md
