"""The end-of-run summary a user reads in the Prefect UI and the terminal."""

from __future__ import annotations

from retrain.domain.refs import (
    EvaluationOutput,
    PushOutput,
    SplitStats,
    StatisticsOutput,
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
