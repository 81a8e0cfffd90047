"""Cost and duration estimates: hand-computed figures from the default price table."""

from __future__ import annotations

import json

import pytest

from retrain.domain.costs import (
    DEFAULT_PRICES,
    actual_cost,
    estimate_cost,
    estimate_hours,
    load_price_table,
)
from retrain.domain.recommender import GpuConfig


def test_four_t4_preemptible_on_n1_standard_32_for_two_hours():
    # GPUs:    4 × $0.35        = $1.40/h
    # machine: n1-standard-32   = $1.52/h
    # on-demand                 = $2.92/h
    # preemptible: × (1 - 0.70) = $0.876/h
    # 2 h                       = $1.752
    est = estimate_cost(
        GpuConfig(
            enabled=True,
            count=4,
            type="nvidia-tesla-t4",
            preemptible=True,
            machine_type="n1-standard-32",
        ),
        hours=(2.0, 2.0),
    )
    assert est.hourly_usd == pytest.approx(0.876)
    assert est.low_usd == pytest.approx(1.752)
    assert est.high_usd == pytest.approx(1.752)
    assert (est.gpu_type, est.gpu_count, est.machine_type) == ("nvidia-tesla-t4", 4, "n1-standard-32")
    assert est.preemptible is True
    assert "4 × nvidia-tesla-t4" in est.basis and "$0.876/h" in est.basis


def test_range_scales_with_hours():
    # 2 × L4 on g2-standard-24: 2 × 0.70 + 0.79 = $2.19/h; 1.5 h → $3.285, 3 h → $6.57.
    est = estimate_cost(
        GpuConfig(enabled=True, count=2, type="l4", machine_type="g2-standard-24"),
        hours=(1.5, 3.0),
    )
    assert est.hourly_usd == pytest.approx(2.19)
    assert (est.low_usd, est.high_usd) == (pytest.approx(3.285), pytest.approx(6.57))
    assert (est.low_hours, est.high_hours) == (1.5, 3.0)


def test_cpu_only_run_bills_the_cpu_machine_only():
    # No GPU: cpu_machine_default n1-standard-8 at $0.38/h × 2.5 h = $0.95; the GPU type is
    # ignored because the run does not use it.
    est = estimate_cost(GpuConfig(enabled=False, type="nvidia-tesla-a100"), hours=(2.5, 2.5))
    assert est.gpu_type is None and est.gpu_count == 0
    assert est.machine_type == "n1-standard-8"
    assert est.low_usd == pytest.approx(0.95)


def test_cpu_only_run_on_a_named_machine():
    # e2-standard-4 at $0.134/h × 10 h = $1.34.
    est = estimate_cost(GpuConfig(enabled=False, machine_type="e2-standard-4"), hours=(10.0, 10.0))
    assert est.low_usd == pytest.approx(1.34)


def test_preemptible_discount_applies_to_gpu_and_machine():
    def hourly(preemptible: bool) -> float:
        return estimate_cost(
            GpuConfig(
                enabled=True,
                count=1,
                type="a100",
                machine_type="a2-highgpu-1g",
                preemptible=preemptible,
            ),
            hours=(1.0, 1.0),
        ).hourly_usd

    # On-demand 3.50 + 0.74 = 4.24; preemptible 0.3 × 4.24 = 1.272. Discounting the GPU alone
    # would give 1.05 + 0.74 = 1.79, the machine alone 3.50 + 0.222 = 3.722.
    assert hourly(False) == pytest.approx(4.24)
    assert hourly(True) == pytest.approx(1.272)


def test_gpu_aliases_and_vertex_names_resolve_to_one_price():
    prices = [
        estimate_cost(GpuConfig(enabled=True, count=1, type=name), hours=(1.0, 1.0)).hourly_usd
        for name in ("t4", "T4", "nvidia-tesla-t4", "NVIDIA_TESLA_T4")
    ]
    # 1 × T4 defaults to n1-standard-8: 0.35 + 0.38.
    assert prices == [pytest.approx(0.73)] * 4
    assert DEFAULT_PRICES.gpu_price("h100") == ("nvidia-h100-80gb", 4.50)


def test_default_machine_follows_the_gpu_count():
    est = estimate_cost(GpuConfig(enabled=True, count=4, type="l4"), hours=(1.0, 1.0))
    assert est.machine_type == "g2-standard-48"


def test_unknown_gpu_type_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match="nvidia-tesla-p100") as info:
        estimate_cost(GpuConfig(enabled=True, count=1, type="nvidia-tesla-p100"), hours=(1.0, 1.0))
    assert "nvidia-tesla-t4" in str(info.value) and "aliases: a100" in str(info.value)


def test_unknown_machine_type_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match="n2-standard-8") as info:
        estimate_cost(
            GpuConfig(enabled=True, count=1, type="t4", machine_type="n2-standard-8"),
            hours=(1.0, 1.0),
        )
    assert "n1-standard-32" in str(info.value)


def test_gpu_run_without_a_type_or_a_known_combination_fails():
    with pytest.raises(ValueError, match="GPU type is required"):
        estimate_cost(GpuConfig(enabled=True, count=1, type=None), hours=(1.0, 1.0))
    with pytest.raises(ValueError, match="set machine_type"):
        estimate_cost(GpuConfig(enabled=True, count=3, type="t4"), hours=(1.0, 1.0))


def test_price_file_overrides_defaults(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "gpu_hourly:\n"
        "  T4: 0.50\n"
        "machine_hourly:\n"
        "  n2-standard-8: 0.40\n"
        "preemptible_discount: 0.6\n"
    )
    prices = load_price_table(str(path))
    # 2 × 0.50 (overridden) + 0.40 (added) = 1.40; × (1 - 0.6) = 0.56.
    est = estimate_cost(
        GpuConfig(
            enabled=True,
            count=2,
            type="nvidia-tesla-t4",
            machine_type="n2-standard-8",
            preemptible=True,
        ),
        hours=(1.0, 1.0),
        prices=prices,
    )
    assert est.hourly_usd == pytest.approx(0.56)
    # Prices the file does not mention keep their defaults.
    assert prices.gpu_hourly["nvidia-l4"] == 0.70
    assert prices.machine_hourly["n1-standard-32"] == 1.52


def test_json_price_file_and_none_give_tables(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"cpu_machine_default": "e2-standard-8"}))
    est = estimate_cost(GpuConfig(enabled=False), hours=(1.0, 1.0),
                        prices=load_price_table(str(path)))
    assert est.machine_type == "e2-standard-8" and est.hourly_usd == pytest.approx(0.268)
    assert load_price_table(None) == DEFAULT_PRICES


def test_price_file_with_an_unpriced_cpu_default_is_rejected(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("cpu_machine_default: c3-standard-4\n")
    with pytest.raises(ValueError, match="c3-standard-4"):
        load_price_table(str(path))


def test_estimate_hours_is_a_thirty_percent_range_plus_overhead():
    # 1,000,000 rows × 18 epochs / 5,000 ex/s = 3,600 s = 1 h of training.
    low, high = estimate_hours(rows=1_000_000, epochs=18, examples_per_second=5_000)
    assert low == pytest.approx(0.7 * 1.0 + 0.1)
    assert high == pytest.approx(1.3 * 1.0 + 0.1)
    assert estimate_hours(0, 1, 1.0, overhead_hours=0.25) == (0.25, 0.25)


def test_estimate_hours_rejects_nonsense():
    with pytest.raises(ValueError, match="examples_per_second"):
        estimate_hours(rows=10, epochs=1, examples_per_second=0)
    with pytest.raises(ValueError, match="epochs"):
        estimate_hours(rows=10, epochs=0, examples_per_second=1)


def test_actual_cost_uses_measured_seconds():
    # 4 × T4 preemptible on n1-standard-32 = $0.876/h; 3h42m = 13,320 s → $3.2412.
    cost = actual_cost(
        GpuConfig(
            enabled=True,
            count=4,
            type="t4",
            preemptible=True,
            machine_type="n1-standard-32",
        ),
        seconds=13_320,
    )
    assert cost == pytest.approx(0.876 * 3.7)


def test_data_stage_hours_follow_the_path_that_will_run():
    from retrain.domain.costs import STREAMING_DATA_ROWS_PER_S, data_stage_hours

    rows = 41_700_000  # a 2 GB CSV of the synthetic interactions
    assert data_stage_hours(rows, streaming=True) == pytest.approx(
        rows / STREAMING_DATA_ROWS_PER_S / 3600)
    assert data_stage_hours(rows, streaming=False) > 10 * data_stage_hours(rows, streaming=True)
    with pytest.raises(ValueError, match="rows must be >= 0"):
        data_stage_hours(-1, streaming=True)
