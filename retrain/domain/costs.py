"""Cost and duration estimates for a training run, and its cost once it has run.

Pure arithmetic over a price table: no Prefect, no TensorFlow, no network. What is billed
is a run's `GpuConfig` (enabled, count, type, preemptible, machine_type).

Billing model: the machine (and its GPUs, if any) is billed for the whole estimated window,
the non-training overhead included; a preemptible run saves `preemptible_discount` on both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from retrain.domain.recommender import GpuConfig

# Short names a user types, to the Vertex accelerator name lower-cased with hyphens.
GPU_ALIASES: dict[str, str] = {
    "t4": "nvidia-tesla-t4",
    "l4": "nvidia-l4",
    "v100": "nvidia-tesla-v100",
    "a100": "nvidia-tesla-a100",
    "h100": "nvidia-h100-80gb",
}

# The machine each GPU count is offered on (Vertex "Machine Type + GPU Combinations"); used
# when a GPU run names no machine_type. Other combinations must name theirs.
GPU_MACHINE_DEFAULTS: dict[tuple[str, int], str] = {
    ("nvidia-tesla-t4", 1): "n1-standard-8",
    ("nvidia-tesla-t4", 2): "n1-standard-16",
    ("nvidia-tesla-t4", 4): "n1-standard-32",
    ("nvidia-l4", 1): "g2-standard-8",
    ("nvidia-l4", 2): "g2-standard-24",
    ("nvidia-l4", 4): "g2-standard-48",
    ("nvidia-l4", 8): "g2-standard-96",
    ("nvidia-tesla-a100", 1): "a2-highgpu-1g",
    ("nvidia-tesla-a100", 2): "a2-highgpu-2g",
    ("nvidia-tesla-a100", 4): "a2-highgpu-4g",
    ("nvidia-tesla-a100", 8): "a2-highgpu-8g",
}


def normalise_gpu_type(name: str) -> str:
    """`NVIDIA_TESLA_T4`, `nvidia-tesla-t4` and `T4` all become `nvidia-tesla-t4`."""
    key = name.strip().lower().replace("_", "-")
    return GPU_ALIASES.get(key, key)


def _normalise_machine(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _gpu_prices(value: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, price in value.items():
        name = normalise_gpu_type(str(key))
        if name in out and out[name] != price:
            raise ValueError(f"GPU type {key!r} priced twice ({out[name]} and {price})")
        out[name] = price
    return out


def _machine_prices(value: dict[Any, Any]) -> dict[str, Any]:
    return {_normalise_machine(str(key)): price for key, price in value.items()}


class PriceTable(BaseModel):
    """Hourly prices in USD.

    The defaults are approximate on-demand GCP list prices (GPU prices from the GPU types
    reference; machine prices are the vCPU + memory part only, GPUs excluded). They vary by
    region and discount: override them for your contract with a price file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu_hourly: dict[str, float] = Field(
        description="USD per GPU-hour by accelerator type. Keys may be Vertex names "
        "(NVIDIA_TESLA_T4), lower-case (nvidia-tesla-t4) or short aliases (t4); they are "
        "stored lower-case with hyphens, aliases resolved."
    )
    machine_hourly: dict[str, float] = Field(
        description="USD per hour by machine type (e.g. n1-standard-32), GPUs excluded."
    )
    preemptible_discount: float = Field(
        default=0.7,
        ge=0.0,
        lt=1.0,
        description="Fraction of the on-demand price saved by preemptible (spot) capacity; "
        "applied to GPUs and machine alike.",
    )
    cpu_machine_default: str = Field(
        default="n1-standard-8",
        description="Machine type billed for a run without GPUs that names no machine_type.",
    )

    @field_validator("gpu_hourly", mode="before")
    @classmethod
    def _normalise_gpu_keys(cls, value: Any) -> Any:
        return _gpu_prices(value) if isinstance(value, dict) else value

    @field_validator("machine_hourly", mode="before")
    @classmethod
    def _normalise_machine_keys(cls, value: Any) -> Any:
        return _machine_prices(value) if isinstance(value, dict) else value

    @field_validator("gpu_hourly", "machine_hourly")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for key, price in value.items():
            if price < 0:
                raise ValueError(f"price of {key!r} is negative: {price}")
        return value

    @model_validator(mode="after")
    def _cpu_default_is_priced(self) -> PriceTable:
        name = _normalise_machine(self.cpu_machine_default)
        if name not in self.machine_hourly:
            raise ValueError(
                f"cpu_machine_default {self.cpu_machine_default!r} has no price in machine_hourly"
            )
        object.__setattr__(self, "cpu_machine_default", name)
        return self

    def gpu_price(self, gpu_type: str) -> tuple[str, float]:
        """The canonical name and hourly price of one GPU; ValueError naming an unknown type."""
        name = normalise_gpu_type(gpu_type)
        if name not in self.gpu_hourly:
            aliases = ", ".join(sorted(GPU_ALIASES))
            known = f"{', '.join(sorted(self.gpu_hourly))} (aliases: {aliases})"
            raise ValueError(f"unknown GPU type {gpu_type!r}; known: {known}")
        return name, self.gpu_hourly[name]

    def machine_price(self, machine_type: str) -> tuple[str, float]:
        """The normalised name and hourly price of a machine; ValueError naming an unknown one."""
        name = _normalise_machine(machine_type)
        if name not in self.machine_hourly:
            known = ", ".join(sorted(self.machine_hourly))
            raise ValueError(f"unknown machine type {machine_type!r}; known: {known}")
        return name, self.machine_hourly[name]


DEFAULT_PRICES = PriceTable(
    gpu_hourly={
        "nvidia-tesla-t4": 0.35,
        "nvidia-l4": 0.70,
        "nvidia-tesla-v100": 2.50,
        "nvidia-tesla-a100": 3.50,
        "nvidia-h100-80gb": 4.50,
    },
    machine_hourly={
        # General-purpose CPU machines (pipeline stages, CPU-only training).
        "e2-standard-4": 0.134,
        "e2-standard-8": 0.268,
        "n1-standard-4": 0.19,
        "n1-standard-8": 0.38,
        "n1-standard-16": 0.76,
        "n1-standard-32": 1.52,
        # GPU hosts, vCPU + memory only (the L4 / A100 is priced in gpu_hourly).
        "g2-standard-8": 0.26,
        "g2-standard-24": 0.79,
        "g2-standard-48": 1.58,
        "g2-standard-96": 3.15,
        "a2-highgpu-1g": 0.74,
        "a2-highgpu-2g": 1.48,
        "a2-highgpu-4g": 2.96,
        "a2-highgpu-8g": 5.92,
    },
    preemptible_discount=0.7,
    cpu_machine_default="n1-standard-8",
)


def load_price_table(path: str | None) -> PriceTable:
    """Prices from a YAML or JSON file laid over `DEFAULT_PRICES`; None gives the defaults.

    The file may price only what differs: its `gpu_hourly` and `machine_hourly` entries are
    merged key by key into the defaults, its scalar fields replace them.
    """
    if path is None:
        return DEFAULT_PRICES
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if path.lower().endswith(".json") else yaml.safe_load(text)
    if data is None:
        return DEFAULT_PRICES
    if not isinstance(data, dict):
        raise ValueError(f"price file {path} must hold a mapping, not {type(data).__name__}")
    merged: dict[str, Any] = DEFAULT_PRICES.model_dump() | data
    for field, normalise in (("gpu_hourly", _gpu_prices), ("machine_hourly", _machine_prices)):
        value = data.get(field)
        if isinstance(value, dict):
            # Keys are normalised before the merge so `T4: 0.4` replaces the default T4 price.
            merged[field] = getattr(DEFAULT_PRICES, field) | normalise(value)
    return PriceTable.model_validate(merged)


class CostEstimate(BaseModel):
    """What a run is expected to cost, as a range, with the arithmetic behind it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low_usd: float = Field(description="Cost at the low end of the duration range, USD.")
    high_usd: float = Field(description="Cost at the high end of the duration range, USD.")
    hourly_usd: float = Field(description="Billed rate: GPUs + machine, discount applied, USD/h.")
    low_hours: float = Field(description="Low end of the estimated duration, hours.")
    high_hours: float = Field(description="High end of the estimated duration, hours.")
    gpu_type: str | None = Field(description="Canonical GPU type billed; None for a CPU-only run.")
    gpu_count: int = Field(description="GPUs billed; 0 for a CPU-only run.")
    machine_type: str = Field(description="Machine type billed.")
    preemptible: bool = Field(description="Whether the preemptible discount was applied.")
    basis: str = Field(description="One line showing the arithmetic.")


def estimate_hours(
    rows: int, epochs: int, examples_per_second: float, overhead_hours: float = 0.1
) -> tuple[float, float]:
    """Low/high duration in hours: rows × epochs / throughput, ±30%, plus a fixed overhead.

    The overhead covers the non-training stages (ExampleGen … Pusher) and job start-up.
    """
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if examples_per_second <= 0:
        raise ValueError(f"examples_per_second must be > 0, got {examples_per_second}")
    if overhead_hours < 0:
        raise ValueError(f"overhead_hours must be >= 0, got {overhead_hours}")
    training_hours = rows * epochs / examples_per_second / 3600.0
    return training_hours * 0.7 + overhead_hours, training_hours * 1.3 + overhead_hours


# Input rows per second through the data stages (ExampleGen + StatisticsGen + Transform) on
# 2 CPU cores, measured by benchmarks/scale.py: the streaming path at 10M rows (219 s) and
# TFX's Beam executors under LocalDagRunner at 1M rows (248 s).
STREAMING_DATA_ROWS_PER_S = 45_000.0
BEAM_DATA_ROWS_PER_S = 4_000.0


def data_stage_hours(rows: int, streaming: bool) -> float:
    """Hours the data stages take for `rows` input rows on the path that will run."""
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    rate = STREAMING_DATA_ROWS_PER_S if streaming else BEAM_DATA_ROWS_PER_S
    return rows / rate / 3600.0


class _Rate(NamedTuple):
    """The billed hourly rate of one machine with its GPUs, and what it is made of."""

    gpu_type: str | None
    gpu_count: int
    gpu_hourly: float
    machine_type: str
    machine_hourly: float
    preemptible: bool
    hourly: float


def _rate(gpu: GpuConfig, prices: PriceTable) -> _Rate:
    gpu_name: str | None = None
    gpu_each = 0.0
    gpus = 0
    machine_type = gpu.machine_type
    if gpu.enabled:
        if gpu.count < 1:
            raise ValueError(f"GPU count must be >= 1, got {gpu.count}")
        if gpu.type is None:
            known = ", ".join(sorted(prices.gpu_hourly))
            raise ValueError(f"GPU type is required to estimate cost; known: {known}")
        gpu_name, gpu_each = prices.gpu_price(gpu.type)
        gpus = gpu.count
        if machine_type is None:
            machine_type = GPU_MACHINE_DEFAULTS.get((gpu_name, gpu.count))
            if machine_type is None:
                raise ValueError(
                    f"no default machine type for {gpu.count} × {gpu_name}; set machine_type"
                )
    elif machine_type is None:
        machine_type = prices.cpu_machine_default
    machine_name, machine_each = prices.machine_price(machine_type)
    on_demand = gpus * gpu_each + machine_each
    factor = 1.0 - prices.preemptible_discount if gpu.preemptible else 1.0
    return _Rate(
        gpu_type=gpu_name,
        gpu_count=gpus,
        gpu_hourly=gpu_each,
        machine_type=machine_name,
        machine_hourly=machine_each,
        preemptible=gpu.preemptible,
        hourly=on_demand * factor,
    )


def estimate_cost(
    gpu: GpuConfig, *, hours: tuple[float, float], prices: PriceTable = DEFAULT_PRICES
) -> CostEstimate:
    """(count × GPU price + machine price) × hours, less the preemptible discount on both.

    Without GPUs only the machine is billed: `gpu.machine_type`, else
    `prices.cpu_machine_default`. With GPUs and no machine type, the machine Vertex pairs with
    that GPU count is used. Unknown GPU or machine types raise ValueError naming the value and
    the known ones.
    """
    low, high = hours
    if low < 0 or high < low:
        raise ValueError(f"hours must be 0 <= low <= high, got {hours}")
    rate = _rate(gpu, prices)
    parts = [f"{rate.machine_type} ${rate.machine_hourly:.3f}"]
    if rate.gpu_type is not None:
        parts.insert(0, f"{rate.gpu_count} × {rate.gpu_type} ${rate.gpu_hourly:.3f}")
    discount = (
        f" × (1 - {prices.preemptible_discount:.0%} preemptible)" if rate.preemptible else ""
    )
    basis = (
        f"({' + '.join(parts)}){discount} = ${rate.hourly:.3f}/h × {low:.2f}-{high:.2f} h"
        f" = ${rate.hourly * low:.2f}-${rate.hourly * high:.2f}"
    )
    return CostEstimate(
        low_usd=rate.hourly * low,
        high_usd=rate.hourly * high,
        hourly_usd=rate.hourly,
        low_hours=low,
        high_hours=high,
        gpu_type=rate.gpu_type,
        gpu_count=rate.gpu_count,
        machine_type=rate.machine_type,
        preemptible=rate.preemptible,
        basis=basis,
    )


def actual_cost(gpu: GpuConfig, *, seconds: float, prices: PriceTable = DEFAULT_PRICES) -> float:
    """USD a finished run cost: the estimate's hourly rate × its measured wall-clock seconds."""
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    return _rate(gpu, prices).hourly * seconds / 3600.0
