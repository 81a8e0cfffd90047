"""Data gates between runs: drift, skew, and empty or constant features.

ExampleValidator measures (through TFDV's comparators, `retrain/adapters/tfdv_drift.py`)
how far this run's data is from the model's previous finished run (drift) and how far its
eval split is from its train split (skew), and which features carry no information (empty
in every row, or one value everywhere). The rules here are pure: thresholds and actions in,
findings out. A `fail` finding stops the run at ExampleValidator; a `warn` finding is
recorded and announced (event `retrain.data.drift`); `off` measures nothing.

Distances, as TFDV computes them:
- categorical (string) features: L-infinity distance, the largest difference between the two
  runs' shares of any one value (0: the same mix; 0.1: some value's share moved 10 points);
- numeric features: Jensen-Shannon divergence of the two histograms, log base 2 (0: the same
  distribution, 1: disjoint).
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class GateAction(str, Enum):
    """What a gate does when a feature crosses it."""

    FAIL = "fail"
    WARN = "warn"
    OFF = "off"


class Comparison(str, Enum):
    """Which gate a finding comes from."""

    DRIFT = "drift"  # this run against the model's previous finished run
    SKEW = "skew"  # this run's eval split against its train split
    EMPTY = "empty"  # no value in any row
    CONSTANT = "constant"  # one value in every row


class Measure(str, Enum):
    """TFDV's comparator for a feature's kind."""

    L_INFINITY = "l_infinity"  # categorical features
    JENSEN_SHANNON = "jensen_shannon_divergence"  # numeric features

    @property
    def label(self) -> str:
        """How a message names the measure."""
        return "L-infinity distance" if self is Measure.L_INFINITY else "Jensen-Shannon divergence"


# Defaults: a category whose share moves by 10 points, or a numeric histogram half-way
# to a different shape, is worth a person's look; sampling noise between two draws of the
# same data is far below (synthetic data, 10k rows: L-inf < 0.02, JSD < 0.01).
DEFAULT_L_INFINITY = 0.1
DEFAULT_JENSEN_SHANNON = 0.1


class DistanceGate(BaseModel):
    """A distance gate (drift or skew): thresholds per measure, per feature, and its action."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: GateAction = Field(
        default=GateAction.WARN,
        description="fail: stop the run at ExampleValidator (nothing trained or pushed); warn: "
        "record the finding and emit retrain.data.drift, the run goes on; off: not measured.",
    )
    categorical_threshold: float = Field(
        default=DEFAULT_L_INFINITY, ge=0.0, le=1.0,
        description="Largest allowed L-infinity distance of a string feature's value shares.",
    )
    numeric_threshold: float = Field(
        default=DEFAULT_JENSEN_SHANNON, ge=0.0, le=1.0,
        description="Largest allowed Jensen-Shannon divergence (log2) of a numeric feature.",
    )
    features: dict[str, float] = Field(
        default_factory=dict,
        description="Per-feature threshold overrides, e.g. {\"price\": 0.3}; the measure "
        "follows the feature's kind.",
    )
    ignore: list[str] = Field(
        default_factory=list, description="Features this gate never checks (ids, timestamps).",
    )

    def threshold(self, feature: str, measure: Measure) -> float:
        """The threshold `feature` is held to."""
        if feature in self.features:
            return self.features[feature]
        if measure is Measure.L_INFINITY:
            return self.categorical_threshold
        return self.numeric_threshold


class DataGatesConfig(BaseModel):
    """The gates ExampleValidator applies between runs and between splits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drift: DistanceGate = Field(
        default_factory=DistanceGate,
        description="Train split against the train split of the model's previous finished run "
        "(completed or not blessed). A model's first run has no baseline and says so.",
    )
    skew: DistanceGate = Field(
        default_factory=DistanceGate, description="Eval split against the train split."
    )
    empty_features: GateAction = Field(
        default=GateAction.FAIL,
        description="A feature with no value in any row of any split (a column left empty).",
    )
    constant_features: GateAction = Field(
        default=GateAction.WARN,
        description="A feature with one and the same value in every row of every split.",
    )


class FeatureDistance(BaseModel):
    """One feature's distance between two statistics, as TFDV measured it."""

    model_config = ConfigDict(frozen=True)

    feature: str = Field(description="Feature name.")
    measure: Measure = Field(description="L-infinity (categorical) or Jensen-Shannon (numeric).")
    value: float = Field(ge=0.0, description="The distance.")


class DataFinding(BaseModel):
    """A feature that crossed a gate, and what the gate did about it."""

    model_config = ConfigDict(frozen=True)

    comparison: Comparison = Field(description="drift, skew, empty or constant.")
    feature: str = Field(description="Feature name.")
    action: GateAction = Field(description="fail stops the run; warn records and announces.")
    measure: Measure | None = Field(default=None, description="Distance measure, if any.")
    value: float | None = Field(default=None, description="The distance measured.")
    threshold: float | None = Field(default=None, description="The threshold it crossed.")
    message: str = Field(description="One line a person can read.")


def judge_distances(comparison: Comparison, gate: DistanceGate,
                    distances: list[FeatureDistance], against: str) -> list[DataFinding]:
    """Findings for every distance above its threshold (equal to it passes), by feature."""
    if gate.action is GateAction.OFF:
        return []
    findings = []
    for distance in sorted(distances, key=lambda d: d.feature):
        if distance.feature in gate.ignore:
            continue
        bound = gate.threshold(distance.feature, distance.measure)
        if not distance.value > bound:
            continue
        findings.append(DataFinding(
            comparison=comparison, feature=distance.feature, action=gate.action,
            measure=distance.measure, value=distance.value, threshold=bound,
            message=f"{comparison.value}: {distance.feature} {distance.measure.label} "
                    f"{distance.value:.4g} > {bound:g} against {against}",
        ))
    return findings


def judge_degenerate(empty: list[str], constant: dict[str, str],
                     gates: DataGatesConfig) -> list[DataFinding]:
    """Findings for empty features and for constant ones (feature -> its one value)."""
    findings = []
    if gates.empty_features is not GateAction.OFF:
        findings += [DataFinding(
            comparison=Comparison.EMPTY, feature=name, action=gates.empty_features,
            message=f"empty: {name} has no value in any row") for name in sorted(empty)]
    if gates.constant_features is not GateAction.OFF:
        findings += [DataFinding(
            comparison=Comparison.CONSTANT, feature=name, action=gates.constant_features,
            message=f"constant: {name} is {value} in every row")
            for name, value in sorted(constant.items())]
    return findings


def failing(findings: list[DataFinding]) -> list[DataFinding]:
    """The findings that stop the run."""
    return [finding for finding in findings if finding.action is GateAction.FAIL]


def failure_message(findings: list[DataFinding]) -> str:
    """The run's error message when gates stop it: every failing feature, with its distance."""
    return "data gates failed: " + "; ".join(finding.message for finding in failing(findings))
