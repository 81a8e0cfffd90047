"""The blessing decision: a candidate's metrics held to the configured thresholds.

Pure and TF-free. Every rule checked becomes a `RuleResult` (passed or not) in config order,
so a blessing records why, including what a force-bless overrode. Beside the configured
bounds, a thresholded metric that has a trivial predictor (`trivial.py`) must beat it by
`evaluator.trivial_baseline.margin`.
"""

from __future__ import annotations

import math
from typing import Sequence

from retrain.domain.evaluation import ForceBless, MetricThreshold, TrivialBaseline
from retrain.domain.refs import Blessing, RuleResult
from tasks.evaluator.trivial import perfect_score, predictor_for

FIRST_RUN_MESSAGE = "no baseline (first run): change thresholds skipped, absolute thresholds only"


def _number(value: float, digits: int | None = 6) -> str:
    """A number for a message: integers as such, else `digits` significant (None: exact)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if digits is None else f"{value:.{digits}g}"


def _pair(value: float, bound: float) -> tuple[str, str]:
    """Both numbers, short but with enough digits that unequal numbers read unequal."""
    for digits in (4, 6, 9, 12, None):
        shown = _number(value, digits), _number(bound, digits)
        if shown[0] != shown[1] or value == bound:
            break
    return shown


def _held(value: float, bound: float, higher: bool) -> bool:
    # Plain comparisons: equal to the bound passes, and NaN never does.
    return value >= bound if higher else value <= bound


def _relation(passed: bool, higher: bool, value: float) -> str:
    if passed:
        return ">=" if higher else "<="
    if math.isnan(value):
        return "is not >=" if higher else "is not <="
    return "<" if higher else ">"


def _absolute_rule(name: str, value: float, bound: float, higher: bool) -> RuleResult:
    passed = _held(value, bound, higher)
    shown, bound_shown = _pair(value, bound)
    side = "lower" if higher else "upper"
    return RuleResult(
        metric=name, rule=f"{side}_bound", passed=passed, value=value, threshold=bound,
        message=f"{name} {shown} {_relation(passed, higher, value)} {side} bound {bound_shown}",
    )


def _max_regression_rule(
    name: str, value: float, base: float, allowed: float, higher: bool
) -> RuleResult:
    bound = base - allowed if higher else base + allowed
    passed = _held(value, bound, higher)
    shown, bound_shown = _pair(value, bound)
    sign = "-" if higher else "+"
    computed = ""
    if _number(value) == _number(bound) and value != bound:
        # Rounding decided it (0.1 + 0.2 > 0.3): show the bound actually compared with.
        computed = f" = {bound_shown}"
    message = (f"{name} {shown} {_relation(passed, higher, value)} baseline {_number(base)} "
               f"{sign} {_number(allowed)}{computed} (max regression)")
    return RuleResult(
        metric=name, rule="max_regression", passed=passed, value=value, threshold=bound,
        baseline_value=base, message=message,
    )


def _relative_rule(
    name: str, value: float, base: float, tolerance: float, higher: bool
) -> RuleResult:
    margin = tolerance * abs(base)
    bound = base - margin if higher else base + margin
    passed = _held(value, bound, higher)
    shown, bound_shown = _pair(value, bound)
    sign = "-" if higher else "+"
    return RuleResult(
        metric=name, rule="relative_tolerance", passed=passed, value=value, threshold=bound,
        baseline_value=base,
        message=f"{name} {shown} {_relation(passed, higher, value)} {bound_shown} = baseline "
        f"{_number(base)} {sign} {_number(tolerance * 100)}% (relative tolerance)",
    )


def _shown(value: float, *others: float) -> list[str]:
    """`value` and `others`, short but with enough digits that unequal numbers read unequal."""
    numbers = (value, *others)
    for digits in (4, 6, 9, 12, None):
        shown = [_number(number, digits) for number in numbers]
        if all(shown[0] != text or value == number for text, number in zip(shown, numbers)):
            break
    return shown


def trivial_rule(
    threshold: MetricThreshold,
    metrics: dict[str, float],
    trivial_metrics: dict[str, float],
    margin: float,
) -> RuleResult | None:
    """The candidate against its trivial predictor, or None when there is nothing to compare.

    To pass, the value must lie `margin` of the trivial predictor's distance to a perfect
    score beyond the trivial value, in the metric's better direction (equal passes).
    """
    name = threshold.class_name
    predictor = predictor_for(name)
    if predictor is None or name not in trivial_metrics or name not in metrics:
        return None  # a missing candidate metric has its missing_metric rule already
    value, trivial = float(metrics[name]), float(trivial_metrics[name])
    perfect = perfect_score(name)
    higher = threshold.better_higher
    step = margin * abs(perfect - trivial)
    bound = trivial + step if higher else trivial - step
    passed = _held(value, bound, higher)
    shown, trivial_shown, bound_shown = _shown(value, trivial, bound)
    relation = ">=" if higher else "<="
    how = (f"by {_number(margin * 100)}% of its distance to {_number(perfect)}")
    if passed:
        verdict = f"beats the {predictor.value}'s {trivial_shown} {how} ({relation} {bound_shown})"
    else:
        verdict = (f"does not beat the {predictor.value}'s {trivial_shown} {how} "
                   f"(needs {relation} {bound_shown})")
    return RuleResult(
        metric=name, rule="trivial_baseline", passed=passed, value=value, threshold=bound,
        trivial_value=trivial, message=f"{name} {shown} {verdict} (trivial baseline)",
    )


def trivial_rules(
    thresholds: Sequence[MetricThreshold],
    metrics: dict[str, float],
    trivial_metrics: dict[str, float] | None,
    config: TrivialBaseline,
) -> list[RuleResult]:
    """One trivial_baseline rule per thresholded metric that has a trivial value, in config
    order; none when the rule is off."""
    if not config.enabled or not trivial_metrics:
        return []
    rules: list[RuleResult] = []
    seen: set[str] = set()
    for threshold in thresholds:
        if threshold.class_name in seen:
            continue
        seen.add(threshold.class_name)
        rule = trivial_rule(threshold, metrics, trivial_metrics, config.margin)
        if rule is not None:
            rules.append(rule)
    return rules


def _threshold_rules(
    threshold: MetricThreshold,
    metrics: dict[str, float],
    baseline_metrics: dict[str, float] | None,
    baseline_name: str,
) -> list[RuleResult]:
    name = threshold.class_name
    if name not in metrics:
        return [RuleResult(metric=name, rule="missing_metric", passed=False,
                           message=f"{name} missing from the candidate's metrics")]
    value = float(metrics[name])
    higher = threshold.better_higher
    rules = []
    if threshold.lower_bound is not None:
        rules.append(_absolute_rule(name, value, threshold.lower_bound, higher=True))
    if threshold.upper_bound is not None:
        rules.append(_absolute_rule(name, value, threshold.upper_bound, higher=False))
    wants_change = threshold.max_regression is not None or threshold.relative_tolerance is not None
    if baseline_metrics is None or not wants_change:
        return rules
    if name not in baseline_metrics:
        rules.append(RuleResult(metric=name, rule="missing_metric", passed=False, value=value,
                                message=f"{name} missing from the metrics of {baseline_name}"))
        return rules
    base = float(baseline_metrics[name])
    if threshold.max_regression is not None:
        rules.append(_max_regression_rule(name, value, base, threshold.max_regression, higher))
    if threshold.relative_tolerance is not None:
        rules.append(_relative_rule(name, value, base, threshold.relative_tolerance, higher))
    return rules


def decide_blessing(
    metrics: dict[str, float],
    thresholds: Sequence[MetricThreshold],
    baseline_metrics: dict[str, float] | None,
    baseline_version: str | None = None,
    force_bless: ForceBless | None = None,
    trivial_metrics: dict[str, float] | None = None,
    trivial_baseline: TrivialBaseline | None = None,
) -> Blessing:
    """Bless when every rule holds (or when forced), recording each rule's outcome.

    ``baseline_metrics`` is None on a first run: change thresholds (max regression, relative
    tolerance) are then skipped and a ``first_run`` rule says so. ``trivial_metrics`` are the
    trivial predictors' values on the same eval rows: each thresholded metric among them gets
    a ``trivial_baseline`` rule after its own (``trivial_baseline`` config: default, on). A
    force-bless keeps the failed rules on record and adds a ``force_bless`` rule naming what
    it overrode.
    """
    baseline_name = (
        f"the baseline (version {baseline_version})" if baseline_version else "the baseline"
    )
    rules: list[RuleResult] = []
    if baseline_metrics is None:
        rules.append(RuleResult(metric="*", rule="first_run", passed=True,
                                message=FIRST_RUN_MESSAGE))
    trivial = trivial_baseline or TrivialBaseline()
    trivial_names = {rule.metric: rule
                     for rule in trivial_rules(thresholds, metrics, trivial_metrics, trivial)}
    for threshold in thresholds:
        rules.extend(_threshold_rules(threshold, metrics, baseline_metrics, baseline_name))
        if threshold.class_name in trivial_names:
            rules.append(trivial_names.pop(threshold.class_name))
    failed = [rule for rule in rules if not rule.passed]
    blessed = not failed
    forced_reason = None
    if force_bless is not None:
        blessed = True
        forced_reason = force_bless.reason
        message = f"forced: {forced_reason}"
        if failed:
            message += " (overrides: " + ", ".join(f"{r.metric} {r.rule}" for r in failed) + ")"
        rules.append(RuleResult(metric="*", rule="force_bless", passed=True, message=message))
    return Blessing(
        blessed=blessed,
        rules=rules,
        baseline_version=baseline_version,
        baseline_metrics=baseline_metrics,
        forced_reason=forced_reason,
    )


def failed_lines(blessing: Blessing) -> list[str]:
    """The messages of the rules that did not hold, one line each."""
    return [rule.message for rule in blessing.failed]
