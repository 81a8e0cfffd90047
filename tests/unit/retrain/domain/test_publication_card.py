"""The model card: each section says the facts of the push, readably and deterministically."""

from __future__ import annotations

import datetime as dt

from retrain.domain.publication import (
    BlessingRuleLine,
    MetricVsChampion,
    PublicationFacts,
    Signature,
    SplitSummary,
    TensorSpec,
    model_card,
)

PUSHED_AT = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)


def _retrieval(**changes) -> PublicationFacts:
    """A retrieval push that replaced champion v3."""
    facts = {
        "model_name": "buyer-product-retrieval",
        "model_type": "retrieval",
        "registered_version": "4",
        "serving_version": "1714566600",
        "serving_uri": "gs://models/serving/buyer-product-retrieval/1714566600",
        "run_name": "buyer-product-retrieval #3",
        "run_id": "3f2a",
        "flow_run_id": "flow-77",
        "mlflow_run_id": "mlf-9",
        "pushed_at": PUSHED_AT,
        "framework_version": "2.16.2",
        "signatures": [Signature(
            name="serving_default",
            inputs=[TensorSpec(name="buyer_id", dtype="string", shape=[None])],
            outputs=[TensorSpec(name="candidate_ids", dtype="string", shape=[None, 10]),
                     TensorSpec(name="scores", dtype="float32", shape=[None, 10])],
        )],
        "hyperparameters": {"training.learning_rate": "0.05", "model.top_k": "10",
                            "trainer.seed": "None", "model.query_tower": "[]",
                            "transform.custom_config": "{}", "input.query": "",
                            "input.format": "parquet"},
        "training_data_uri": "gs://data/orders/*.parquet",
        "training_data_format": "parquet",
        "splits": [SplitSummary(name="train", rows=12000,
                                missing_pct={"buyer_id": 0.0, "country": 2.5}),
                   SplitSummary(name="eval", rows=3000, missing_pct={"buyer_id": 0.0})],
        "feature_names": ["country", "buyer_id"],
        "metrics": [MetricVsChampion(name="recall_at_10", value=0.3125, champion=0.2875,
                                     higher_is_better=True),
                    MetricVsChampion(name="example_count", value=3000, champion=2900,
                                     higher_is_better=True)],
        "champion_version": "3",
        "blessing_rules": [BlessingRuleLine(metric="recall_at_10", passed=True,
                                            message="0.3125 is at least 0.25")],
        "total_parameters": 48_640,
    }
    return PublicationFacts(**{**facts, **changes})


def _section(card: str, heading: str) -> str:
    """The text of one `## heading` section."""
    start = card.index(f"## {heading}\n")
    end = card.find("\n## ", start + 1)
    return card[start:] if end < 0 else card[start:end]


def _missing(text: str, lines: list[str]) -> list[str]:
    """The expected lines that `text` does not have."""
    have = set(text.splitlines())
    return [line for line in lines if line not in have]


def test_title_and_overview_name_the_push():
    card = model_card(_retrieval())
    assert card.startswith("# buyer-product-retrieval v4\n")
    assert _missing(card[:card.index("## Signatures")], [
        "- **Model type:** retrieval",
        "- **Run:** buyer-product-retrieval #3 (run `3f2a`, flow run `flow-77`)",
        "- **Pushed at:** 2024-05-01T12:30:00+00:00",
        "- **Serving path:** `gs://models/serving/buyer-product-retrieval/1714566600` "
        "(serving version 1714566600)",
        "- **MLflow run:** `mlf-9`",
        "- **Framework:** TensorFlow 2.16.2",
        "- **Trainable parameters:** 48,640",
        "- **Replaces:** v3",
    ]) == []


def test_signature_table_lists_inputs_and_outputs_with_dtype_and_shape():
    assert _missing(_section(model_card(_retrieval()), "Signatures"), [
        "### serving_default",
        "| role | name | dtype | shape |",
        "| input | buyer_id | string | [None] |",
        "| output | candidate_ids | string | [None, 10] |",
        "| output | scores | float32 | [None, 10] |",
    ]) == []


def test_hyperparameters_are_sorted_and_leave_out_empty_values():
    section = _section(model_card(_retrieval()), "Hyperparameters")
    rows = [line for line in section.splitlines() if line.startswith("| ") and "key" not in line]
    assert rows == ["| input.format | parquet |", "| model.top_k | 10 |",
                    "| training.learning_rate | 0.05 |"]


def test_a_pipe_in_a_value_does_not_break_the_table():
    card = model_card(_retrieval(hyperparameters={"model.note": "a|b"}))
    assert "| model.note | a\\|b |" in card


def test_training_data_gives_uri_rows_and_missing_share_per_feature_and_split():
    section = _section(model_card(_retrieval()), "Training data")
    assert _missing(section, [
        "- **URI:** `gs://data/orders/*.parquet`",
        "- **Format:** parquet",
        "| train | 12,000 |",
        "| eval | 3,000 |",
        "| feature | train | eval |",
        "| buyer_id | 0.00 | 0.00 |",
        "| country | 2.50 | – |",  # not measured on eval
    ]) == []
    assert section.index("| buyer_id |") < section.index("| country |")


def test_metrics_table_compares_with_the_champion():
    section = _section(model_card(_retrieval()), "Metrics against the champion")
    assert _missing(section, [
        "| metric | better when | value | champion v3 | delta |",
        "| recall_at_10 | higher | 0.3125 | 0.2875 | +0.0250 (better) |",
        "| example_count | higher | 3,000 | 2,900 | +100 (better) |",
    ]) == []
    assert "no champion" not in section


def test_a_lower_error_is_better():
    facts = _retrieval(metrics=[MetricVsChampion(name="rmse", value=0.9, champion=1.0,
                                                 higher_is_better=False)])
    section = _section(model_card(facts), "Metrics against the champion")
    assert "| rmse | lower | 0.9000 | 1.0000 | -0.1000 (better) |" in section


def test_a_first_version_says_there_is_no_champion():
    facts = _retrieval(champion_version=None,
                       metrics=[MetricVsChampion(name="recall_at_10", value=0.3125,
                                                 higher_is_better=True)])
    card = model_card(facts)
    section = _section(card, "Metrics against the champion")
    assert "First version: no champion to compare with." in section
    assert "| recall_at_10 | higher | 0.3125 | – | – |" in section
    assert "- **Replaces:** nothing (first version)" in card
    assert facts.metrics[0].delta is None


def test_a_failed_rule_shows_as_failed_and_the_force_reason_is_given():
    facts = _retrieval(
        blessing_rules=[BlessingRuleLine(metric="recall_at_10", passed=True, message="ok"),
                        BlessingRuleLine(metric="rmse", passed=False,
                                         message="1.2 is above the bound 1.0")],
        forced_reason="holiday traffic; approved by the on-call",
    )
    section = _section(model_card(facts), "Blessing rules")
    assert "- ✅ pass — **recall_at_10**: ok" in section
    assert "- ❌ fail — **rmse**: 1.2 is above the bound 1.0" in section
    assert "**Force-blessed:** holiday traffic; approved by the on-call" in section


def test_no_force_line_when_not_forced():
    assert "Force-blessed" not in model_card(_retrieval())


def test_the_card_is_deterministic_and_clean():
    facts = _retrieval()
    shuffled = _retrieval(hyperparameters=dict(reversed(list(facts.hyperparameters.items()))))
    card = model_card(facts)
    assert card == model_card(shuffled)
    assert card.endswith("\n") and not card.endswith("\n\n")
    assert all(line == line.rstrip() for line in card.splitlines())
    headings = [line for line in card.splitlines() if line.startswith("## ")]
    assert headings == ["## Signatures", "## Hyperparameters", "## Training data",
                        "## Metrics against the champion", "## Blessing rules"]
