"""Benchmark: the recommender trainer's step throughput on GPUs, with proof the GPUs did the work.

Usage (from the repository root, on a machine with NVIDIA GPUs)::

    .venv/bin/python benchmarks/gpu_trainer.py                        # all visible GPUs
    .venv/bin/python benchmarks/gpu_trainer.py --gpus 2 --batch-size 8192 --model multitask
    .venv/bin/python benchmarks/gpu_trainer.py --allow-cpu --rows 20000 --steps 20 --epochs 1

Builds the model the library `run_fn` builds (`tasks.trainer.models`: `choose_strategy`,
then `build_model` + `make_optimizer` inside the strategy's scope, `model.fit`) from
`recommender_config(...)`, and feeds it planted synthetic interactions (`synthetic/`) already
in the form of the transformed features, held in memory: the measurement is the trainer's
steps, not ExampleGen, Transform or file reading. After `--warmup-steps` (tracing, cuDNN
autotuning), `--epochs` × `--steps` steps are timed while a background thread samples
`nvidia-smi` for each GPU's utilisation and memory.

It prints `OK` and exits 0 only when TensorFlow saw a GPU, the strategy's devices are GPUs,
the model's variables live on GPUs and every used GPU showed utilisation > 0 in some sample.
Otherwise it prints `FAILED: <reasons>` and exits 1; an `--allow-cpu` run without a GPU
measures on the CPU and exits 3 (never 0). Exit codes: see EXIT_* below.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import numpy as np

    from retrain.domain.features import FeatureConfig

REPO_ROOT = Path(__file__).resolve().parents[1]

EXIT_OK = 0
EXIT_FAILED = 1  # a check failed, or the run itself failed (2 is argparse's usage error)
EXIT_CPU_ONLY = 3  # --allow-cpu without a GPU: the code path ran, no GPU result

SMI_QUERY = "index,uuid,name,utilization.gpu,memory.used"
_GPU_INDEX = re.compile(r"(?:device:)?GPU:(\d+)$", re.IGNORECASE)


class SmiGpu(BaseModel):
    """One GPU as nvidia-smi lists it."""

    index: int = Field(description="nvidia-smi's index (PCI bus order).")
    uuid: str = Field(description="GPU UUID, e.g. GPU-5f1c….")
    name: str = Field(description="Product name.")


class GpuStats(BaseModel):
    """Utilisation and memory of one GPU over the samples taken during the timed steps."""

    index: int = Field(description="nvidia-smi's index.")
    name: str = Field(description="Product name.")
    used: bool = Field(description="One of the strategy's devices.")
    tf_device: str | None = Field(default=None, description="TensorFlow's name for it, if used.")
    samples: int = Field(default=0, description="Samples taken.")
    util_mean: float | None = Field(default=None, description="Mean utilisation.gpu, %; "
                                    "None when nvidia-smi reports none ([N/A], e.g. MIG).")
    util_max: float | None = Field(default=None, description="Largest utilisation.gpu, %.")
    mem_mean_mib: float | None = Field(default=None, description="Mean memory.used, MiB.")
    mem_max_mib: float | None = Field(default=None, description="Largest memory.used, MiB.")


class Figures(BaseModel):
    """Everything one run found and measured; the verdict is a function of this alone."""

    model: str = Field(description="Model type: retrieval, ranking or multitask.")
    rows: int = Field(description="Synthetic rows held in memory.")
    batch_size: int = Field(description="Global batch size (split over replicas).")
    warmup_steps: int = Field(description="Untimed steps before the timed ones.")
    steps_per_epoch: int = Field(description="Timed steps per epoch.")
    epochs: int = Field(description="Timed epochs.")
    tf_version: str = Field(default="", description="TensorFlow version.")
    built_with_cuda: bool = Field(default=False, description="TensorFlow build has CUDA.")
    tf_gpus: list[str] = Field(default_factory=list, description="Physical GPUs TF sees.")
    gpus_requested: int = Field(default=0, description="GPUs asked of choose_strategy "
                                "(0: CPU, --allow-cpu without a GPU).")
    strategy_error: str | None = Field(default=None, description="What choose_strategy "
                                       "raised for the GPU request, if it did.")
    strategy: str | None = Field(default=None, description="Strategy class used.")
    replicas: int = Field(default=0, description="Replicas in sync.")
    strategy_devices: list[str] = Field(default_factory=list, description="The strategy's "
                                        "worker devices (empty for the default strategy).")
    variable_devices: dict[str, int] = Field(default_factory=dict, description="Model "
                                             "variables (each replica's copy) per device.")
    smi_error: str | None = Field(default=None, description="Why nvidia-smi could not be "
                                  "used; None when it answered.")
    mapping_error: str | None = Field(default=None, description="Why a used TF GPU could "
                                      "not be matched to an nvidia-smi GPU.")
    gpu_stats: list[GpuStats] = Field(default_factory=list, description="Per nvidia-smi GPU.")
    measured: bool = Field(default=False, description="The timed steps ran to the end.")
    run_error: str | None = Field(default=None, description="What the run raised, if it did.")
    warmup_seconds: float | None = Field(default=None, description="Warm-up wall time.")
    epoch_seconds: list[float] = Field(default_factory=list, description="Per timed epoch.")
    timed_seconds: float | None = Field(default=None, description="Wall time of the timed "
                                        "fit call (epochs plus its set-up).")
    examples_per_s: float | None = Field(default=None, description="Timed examples / summed "
                                         "epoch seconds.")
    losses: list[float] = Field(default_factory=list, description="Loss per timed epoch.")


# --- Verdict (pure) ------------------------------------------------------------------------
def _is_gpu(device: str) -> bool:
    return bool(_GPU_INDEX.search(device))


def verdict(f: Figures) -> list[str]:
    """Why the figures are not a GPU result; an empty list means OK."""
    reasons = []
    if not f.tf_gpus:
        reasons.append("no GPU visible to TensorFlow" + (
            "" if f.built_with_cuda else " (this TensorFlow build has no CUDA support)"))
    if f.smi_error:
        reasons.append(f.smi_error)
    if f.run_error:
        reasons.append(f"the run failed: {f.run_error}")
    if not f.measured:
        if not f.run_error and f.tf_gpus:
            reasons.append("no timed steps ran")
        return reasons
    if f.losses and not all(math.isfinite(loss) for loss in f.losses):
        reasons.append(f"training loss is not finite: {f.losses}")
    if not f.tf_gpus:
        return reasons  # the device checks below would only repeat it
    if f.replicas != f.gpus_requested:
        reasons.append(f"asked for {f.gpus_requested} GPU(s), the strategy has "
                       f"{f.replicas} replica(s)")
    if not f.strategy_devices or not all(_is_gpu(d) for d in f.strategy_devices):
        reasons.append(f"the strategy's devices are not GPUs: {f.strategy_devices or 'none'}")
    off_gpu = sorted(d for d in f.variable_devices if not _is_gpu(d))
    if not f.variable_devices or off_gpu:
        reasons.append(f"model variables are not on GPUs: {off_gpu or 'no variables'}")
    if f.smi_error:
        return reasons
    if f.mapping_error:
        reasons.append(f.mapping_error)
    for stats in (s for s in f.gpu_stats if s.used):
        label = f"GPU {stats.index} ({stats.tf_device})"
        if stats.samples == 0:
            reasons.append(f"no nvidia-smi sample of {label} during the timed steps")
        elif stats.util_max is None:
            reasons.append(f"nvidia-smi reports no utilisation for {label} ([N/A]; MIG "
                           "instances do not report it)")
        elif stats.util_max <= 0:
            reasons.append(f"GPU utilisation stayed at 0% on {label}")
    if not any(s.used for s in f.gpu_stats) and not f.mapping_error:
        reasons.append("no used GPU among nvidia-smi's GPUs")
    return reasons


def exit_code(f: Figures, reasons: list[str]) -> int:
    """EXIT_OK without reasons; EXIT_CPU_ONLY for a complete CPU run; else EXIT_FAILED."""
    if not reasons:
        return EXIT_OK
    cpu_smoke_ok = (not f.tf_gpus and f.measured and f.run_error is None
                    and all(math.isfinite(loss) for loss in f.losses))
    return EXIT_CPU_ONLY if cpu_smoke_ok else EXIT_FAILED


def final_line(f: Figures, reasons: list[str], code: int) -> str:
    """The last line printed: `OK: …` or `FAILED: <reasons>`."""
    if code == EXIT_OK:
        busiest = ", ".join(f"GPU {s.index} {s.util_max:.0f}%" for s in f.gpu_stats if s.used)
        return (f"OK: {f.replicas} GPU(s) ({f.strategy}), {f.examples_per_s:.0f} examples/s, "
                f"utilisation max {busiest}")
    if code == EXIT_CPU_ONLY:
        return f"FAILED: no GPU was used (--allow-cpu run measured the CPU): {'; '.join(reasons)}"
    return f"FAILED: {'; '.join(reasons)}"


# --- nvidia-smi ----------------------------------------------------------------------------
def _number(text: str) -> float | None:
    """nvidia-smi's '[N/A]' / '[Not Supported]' → None."""
    try:
        return float(text)
    except ValueError:
        return None


def parse_smi(output: str) -> list[tuple[SmiGpu, float | None, float | None]]:
    """Rows of `--query-gpu=SMI_QUERY --format=csv,noheader,nounits`: (gpu, util %, MiB)."""
    rows = []
    for line in output.strip().splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 5:
            raise ValueError(f"unexpected nvidia-smi line: {line!r}")
        index, uuid, name, util, memory = parts
        rows.append((SmiGpu(index=int(index), uuid=uuid, name=name), _number(util),
                     _number(memory)))
    return rows


def query_smi() -> tuple[list[tuple[SmiGpu, float | None, float | None]], str | None]:
    """One nvidia-smi reading, or the reason there is none."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return [], "nvidia-smi not found on PATH"
    try:
        result = subprocess.run(
            [binary, f"--query-gpu={SMI_QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20,
        )
    except subprocess.TimeoutExpired:
        return [], "nvidia-smi did not answer within 20 s"
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        return [], f"nvidia-smi failed ({result.returncode}): {message[0] if message else ''}"
    try:
        rows = parse_smi(result.stdout)
    except ValueError as error:
        return [], str(error)
    return rows, None if rows else "nvidia-smi lists no GPU"


def smi_index_for(tf_index: int, cuda_visible_devices: str | None,
                  smi_gpus: list[SmiGpu]) -> int | None:
    """nvidia-smi index of TensorFlow's GPU `tf_index` (CUDA_DEVICE_ORDER=PCI_BUS_ID).

    With CUDA_VISIBLE_DEVICES unset, CUDA's order is nvidia-smi's; else its tf_index-th
    entry names the GPU, by index or by (a prefix of the) UUID. None when it cannot tell.
    """
    if cuda_visible_devices is None:
        return tf_index if any(g.index == tf_index for g in smi_gpus) else None
    entries = [e.strip() for e in cuda_visible_devices.split(",") if e.strip()]
    if tf_index >= len(entries):
        return None
    entry = entries[tf_index]
    if entry.isdigit():
        return int(entry) if any(g.index == int(entry) for g in smi_gpus) else None
    matches = [g.index for g in smi_gpus if g.uuid.startswith(entry)]
    return matches[0] if len(matches) == 1 else None


class GpuSampler:
    """Samples nvidia-smi in a background thread until stopped."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.samples: dict[int, list[tuple[float | None, float | None]]] = {}
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            rows, error = query_smi()
            if error:
                self.error = error
            for gpu, util, memory in rows:
                self.samples.setdefault(gpu.index, []).append((util, memory))
            self._stop.wait(self.interval)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def gpu_stats(smi_gpus: list[SmiGpu], samples: dict[int, list[tuple[float | None, float | None]]],
              used: dict[int, str]) -> list[GpuStats]:
    """Per-GPU figures from the samples; `used` maps nvidia-smi index → TF device."""
    stats = []
    for gpu in smi_gpus:
        rows = samples.get(gpu.index, [])
        utils = [u for u, _ in rows if u is not None]
        memory = [m for _, m in rows if m is not None]
        stats.append(GpuStats(
            index=gpu.index, name=gpu.name, used=gpu.index in used,
            tf_device=used.get(gpu.index), samples=len(rows),
            util_mean=sum(utils) / len(utils) if utils else None,
            util_max=max(utils) if utils else None,
            mem_mean_mib=sum(memory) / len(memory) if memory else None,
            mem_max_mib=max(memory) if memory else None,
        ))
    return stats


# --- Data ----------------------------------------------------------------------------------
def synthetic_features(features: FeatureConfig, rows: int, buyers: int, products: int,
                       seed: int) -> tuple[dict, dict[str, int], dict, np.ndarray]:
    """Planted interactions as transformed features: (columns, vocabulary sizes, corpus,
    candidate probability), all numpy.

    Ids are indices into vocabularies of the distinct values (what tf.Transform produces,
    in another order); timestamps become the cyclical sin/cos the library
    preprocessing_fn computes. Raises for a transformed column it cannot synthesise.
    """
    import numpy as np

    from synthetic import SyntheticConfig, plant_factors
    from synthetic.sampling import ChunkSampler

    config = SyntheticConfig(rows=rows, buyers=buyers, products=products, seed=seed,
                             categories=min(12, products), cities=min(8, buyers))
    planted = plant_factors(config)
    chunks = list(ChunkSampler(config, planted))
    buyer = np.concatenate([c.buyer_index for c in chunks])
    product = np.concatenate([c.product_index for c in chunks])
    seconds = np.concatenate([c.timestamp for c in chunks])
    rating = np.concatenate([c.rating for c in chunks]).astype(np.float32)
    city_names, city = np.unique(planted.buyer_city, return_inverse=True)
    category_names, category = np.unique(planted.product_category, return_inverse=True)

    days = seconds // 86_400
    # As tasks/transform/preprocessing.py: day 0 (1970-01-01) was a Thursday, weekday 3.
    phases = {"hour": (seconds % 86_400) / 86_400, "weekday": ((days + 3) % 7) / 7.0}
    raw_ids = {  # raw column → (per-row index, vocabulary size, per-product index or None)
        "buyer_id": (buyer, buyers, None),
        "city": (city[buyer], len(city_names), None),
        "product_id": (product, products, np.arange(products)),
        "category": (category[product], len(category_names), category),
    }
    columns, vocabulary, corpus = {}, {}, {}
    for column in features.xf_columns():
        raw = column.name.removesuffix("_xf").split("__")[0]
        part = column.name.removesuffix("_xf").partition("__")[2]
        if column.kind == "id" and raw in raw_ids and column.vocabulary == raw:
            index, size, per_product = raw_ids[raw]
            columns[column.name] = index.astype(np.int64)
            vocabulary[raw] = size
            if column.tower == "candidate":
                if per_product is None:
                    raise ValueError(f"{column.name}: a buyer column in the candidate tower")
                corpus[column.name] = per_product.astype(np.int64)
        elif column.kind == "float" and raw == "timestamp" and part.rsplit("_", 1)[0] in phases:
            period, fn = part.rsplit("_", 1)
            angle = 2.0 * np.pi * phases[period]
            columns[column.name] = (np.sin(angle) if fn == "sin" else np.cos(angle)).astype(
                np.float32)
        else:
            raise ValueError(f"cannot synthesise transformed column {column.name!r} "
                             f"({column.kind}) from the synthetic interactions")
    if features.target is not None:
        columns[features.target.xf_name] = rating
    probability = np.bincount(product, minlength=products) / len(product)
    return columns, vocabulary, corpus, probability


# --- Measurement ---------------------------------------------------------------------------
def _strategy_devices(strategy) -> list[str]:
    try:
        return list(strategy.extended.worker_devices)
    except (RuntimeError, NotImplementedError, AttributeError):
        return []  # the default strategy has no device list


def measure(args: argparse.Namespace, figures: Figures) -> None:
    """Build, warm up and time the trainer, filling `figures` as far as the run gets."""
    # nvidia-smi numbers GPUs in PCI bus order; make CUDA (and so TensorFlow) do the same.
    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    from retrain.adapters.tfx import prepare_tf_environment

    prepare_tf_environment()
    import tensorflow as tf

    figures.tf_version = tf.__version__
    figures.built_with_cuda = tf.test.is_built_with_cuda()
    physical = tf.config.list_physical_devices("GPU")
    figures.tf_gpus = [device.name for device in physical]
    if not args.no_memory_growth:
        # Else TensorFlow reserves nearly all GPU memory and memory.used says nothing.
        for device in physical:
            tf.config.experimental.set_memory_growth(device, True)
    smi_rows, figures.smi_error = query_smi()
    smi_gpus = [gpu for gpu, _, _ in smi_rows]

    from retrain.domain.examples import recommender_config
    from retrain.domain.recommender import GpuConfig
    from tasks.trainer.models import build_model, choose_strategy, input_sizes, make_optimizer

    requested = args.gpus or max(len(physical), 1)
    try:
        strategy, info = choose_strategy(GpuConfig(enabled=True, count=requested))
        figures.gpus_requested = requested
    except RuntimeError as error:  # no GPU visible: the trainer would refuse too
        figures.strategy_error = str(error)
        if not args.allow_cpu:
            return  # nothing to measure; the verdict says why
        strategy, info = choose_strategy(GpuConfig(enabled=False))
    figures.strategy, figures.replicas = info.strategy, info.replicas
    figures.strategy_devices = _strategy_devices(strategy)

    config = recommender_config(
        "/in-memory", args.model, pipeline_root=str(REPO_ROOT / ".unused"),
        model={"optimizer": {"name": args.optimizer}},
        training={"batch_size": args.batch_size, "learning_rate": args.learning_rate,
                  "seed": args.seed},
    )
    spec = config.recommender
    started = time.perf_counter()
    columns, vocabulary, corpus, probability = synthetic_features(
        spec.features, args.rows, args.buyers, args.products, args.seed)
    print(f"data: {args.rows} rows, {args.buyers} buyers x {args.products} products "
          f"({time.perf_counter() - started:.1f} s)", flush=True)
    batches = args.rows // args.batch_size
    if batches < 1:
        raise ValueError(f"--rows {args.rows} is less than one batch of {args.batch_size}")
    figures.steps_per_epoch = args.steps or batches

    tf.keras.utils.set_random_seed(args.seed)
    # Whole batches as dataset elements: slicing rows one by one would measure tf.data.
    dataset = tf.data.Dataset.from_tensor_slices({
        name: values[: batches * args.batch_size].reshape(batches, args.batch_size)
        for name, values in columns.items()
    }).repeat().prefetch(tf.data.AUTOTUNE)
    corpus_tensors = {name: tf.constant(values) for name, values in corpus.items()}
    with strategy.scope():
        sizes = input_sizes(spec.features, vocabulary.__getitem__)
        model = build_model(spec.model, spec.features, sizes, corpus_tensors, probability)
        model.compile(optimizer=make_optimizer(spec.model.optimizer, args.learning_rate))
    devices: dict[str, int] = {}
    for variable in model.variables:
        for component in strategy.experimental_local_results(variable):
            devices[component.device] = devices.get(component.device, 0) + 1
    figures.variable_devices = devices

    class EpochTimer(tf.keras.callbacks.Callback):
        """Wall time per epoch; logs reach it as numbers, so the epoch's steps are done."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            figures.epoch_seconds.append(time.perf_counter() - self.started)
            figures.losses.append(float((logs or {}).get("loss", math.nan)))

    started = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=max(args.warmup_steps, 1), verbose=0)
    figures.warmup_seconds = time.perf_counter() - started
    cuda_visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    used: dict[int, str] = {}
    for device in figures.strategy_devices:
        match = _GPU_INDEX.search(device)
        if match is None:
            continue
        index = smi_index_for(int(match.group(1)), cuda_visible, smi_gpus)
        if index is None:
            figures.mapping_error = (f"cannot match TensorFlow's {device} to an nvidia-smi GPU "
                                     f"(CUDA_VISIBLE_DEVICES={cuda_visible!r})")
        else:
            used[index] = device
    with GpuSampler(args.sample_interval) as sampler:
        started = time.perf_counter()
        model.fit(dataset, epochs=args.epochs, steps_per_epoch=figures.steps_per_epoch,
                  callbacks=[EpochTimer()], verbose=0)
        figures.timed_seconds = time.perf_counter() - started
    figures.smi_error = figures.smi_error or sampler.error
    figures.gpu_stats = gpu_stats(smi_gpus, sampler.samples, used)
    # Epoch times, not the fit call: its set-up (iterator, callbacks) is not a step.
    figures.examples_per_s = (args.epochs * figures.steps_per_epoch * args.batch_size
                              / sum(figures.epoch_seconds))
    figures.measured = True


# --- Report --------------------------------------------------------------------------------
def _fmt(value: float | None, spec: str = ".0f") -> str:
    return "n/a" if value is None else format(value, spec)


def print_figures(f: Figures) -> None:
    """The figures as aligned lines."""
    print()
    print(f"tensorflow                {f.tf_version} (CUDA build: {f.built_with_cuda})")
    print(f"GPUs visible to TF        {f.tf_gpus or 'none'}")
    print(f"nvidia-smi                {f.smi_error or 'ok'}")
    if f.strategy_error:
        print(f"choose_strategy raised    {f.strategy_error}")
    if f.strategy is None:
        return
    print(f"strategy                  {f.strategy}, {f.replicas} replica(s), devices "
          f"{f.strategy_devices or '(default strategy: no device list)'}")
    print("variable devices")
    for device, count in sorted(f.variable_devices.items()):
        print(f"  {device:<46} {count:4d} variables")
    print(f"model                     {f.model}, global batch {f.batch_size} "
          f"({f.batch_size / max(f.replicas, 1):.0f} per replica)")
    if not f.measured:
        return
    print(f"warm-up                   {f.warmup_steps} steps, {f.warmup_seconds:.1f} s")
    print(f"timed                     {f.epochs} epoch(s) x {f.steps_per_epoch} steps, "
          f"{f.timed_seconds:.1f} s")
    for epoch, (seconds, loss) in enumerate(zip(f.epoch_seconds, f.losses), start=1):
        print(f"  epoch {epoch}: {seconds:6.2f} s  "
              f"{f.steps_per_epoch * f.batch_size / seconds:10.0f} examples/s  loss {loss:.4f}")
    print(f"examples/s                {f.examples_per_s:10.0f}")
    print(f"examples/s per replica    {f.examples_per_s / max(f.replicas, 1):10.0f}")
    if f.gpu_stats:
        print("GPU (nvidia-smi)          samples  util mean  util max  mem mean MiB  mem max MiB")
        for s in f.gpu_stats:
            label = f"{s.index} {s.name}"[:22] + (" *" if s.used else "  ")
            print(f"  {label:<24}{s.samples:>7}  {_fmt(s.util_mean):>8}%  {_fmt(s.util_max):>7}%"
                  f"  {_fmt(s.mem_mean_mib):>12}  {_fmt(s.mem_max_mib):>11}")
        print("  (* = used by the strategy)")


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the benchmark script."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["retrieval", "ranking", "multitask"],
                        default="retrieval")
    parser.add_argument("--gpus", type=int, default=None,
                        help="GPUs to mirror over (default: all visible)")
    parser.add_argument("--batch-size", type=int, default=1024, help="global batch size")
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthetic rows in memory")
    parser.add_argument("--buyers", type=int, default=5_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per epoch (default: one pass over --rows)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs")
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--optimizer", choices=["adagrad", "adam", "sgd"], default="adam")
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-interval", type=float, default=0.2,
                        help="seconds between nvidia-smi samples")
    parser.add_argument("--no-memory-growth", action="store_true",
                        help="let TensorFlow reserve all GPU memory up front, as the trainer does")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="without a GPU, measure on the CPU anyway (exit code 3, never 0)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Measure, print the figures and the verdict; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.gpus is not None and args.gpus < 1:
        build_parser().error("--gpus must be >= 1 (use --allow-cpu for a CPU run)")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    figures = Figures(model=args.model, rows=args.rows, batch_size=args.batch_size,
                      warmup_steps=args.warmup_steps, steps_per_epoch=args.steps or 0,
                      epochs=args.epochs)
    try:
        measure(args, figures)
    except Exception as error:  # noqa: BLE001 - a failed run is a FAILED verdict, with its trace
        traceback.print_exc()
        # One line, so that the verdict stays one line (pydantic's messages span several).
        figures.run_error = " ".join(f"{type(error).__name__}: {error}".split())
    print_figures(figures)
    reasons = verdict(figures)
    code = exit_code(figures, reasons)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(
            {**figures.model_dump(), "reasons": reasons, "exit_code": code}, indent=2) + "\n")
    print()
    print(final_line(figures, reasons, code))
    return code


if __name__ == "__main__":
    sys.exit(main())
