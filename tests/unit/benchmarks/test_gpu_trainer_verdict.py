"""The GPU trainer benchmark's verdict: OK only with proof that GPUs did the work.

`benchmarks/gpu_trainer.py` is a script, not a package module: it is loaded from its path.
Everything tested here is pure (no TensorFlow), so it runs on any machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmark_modules import BENCHMARKS, load_benchmark

SCRIPT = BENCHMARKS / "gpu_trainer.py"
gt = load_benchmark("gpu_trainer.py", "gpu_trainer_bench")
GPU0 = "/job:localhost/replica:0/task:0/device:GPU:0"
GPU1 = "/job:localhost/replica:0/task:0/device:GPU:1"
CPU0 = "/job:localhost/replica:0/task:0/device:CPU:0"


def _stats(index: int, util_max: float | None = 80.0, samples: int = 25,
           used: bool = True) -> gt.GpuStats:
    return gt.GpuStats(index=index, name="NVIDIA H100 80GB HBM3", used=used,
                       tf_device=[GPU0, GPU1][index] if used else None, samples=samples,
                       util_mean=None if util_max is None else util_max / 2,
                       util_max=util_max, mem_mean_mib=900.0, mem_max_mib=1024.0)


def _mirrored(**changes) -> gt.Figures:
    """Two GPUs, MirroredStrategy, variables on both, both busy: the OK case."""
    values = dict(
        model="retrieval", rows=100_000, batch_size=4096, warmup_steps=20,
        steps_per_epoch=24, epochs=3, tf_version="2.16.2", built_with_cuda=True,
        tf_gpus=["/physical_device:GPU:0", "/physical_device:GPU:1"], gpus_requested=2,
        strategy="MirroredStrategy", replicas=2, strategy_devices=[GPU0, GPU1],
        variable_devices={GPU0: 12, GPU1: 12}, gpu_stats=[_stats(0), _stats(1)],
        measured=True, warmup_seconds=9.0, epoch_seconds=[1.0, 1.0, 1.0],
        timed_seconds=3.2, examples_per_s=98_304.0, losses=[8000.0, 7000.0, 6500.0],
    )
    values.update(changes)
    return gt.Figures(**values)


def _no_gpu(**changes) -> gt.Figures:
    """What a machine without GPU and without nvidia-smi yields before any training."""
    values = dict(model="retrieval", rows=100_000, batch_size=1024, warmup_steps=20,
                  steps_per_epoch=0, epochs=3, tf_version="2.16.2", built_with_cuda=True,
                  smi_error="nvidia-smi not found on PATH",
                  strategy_error="GPUs requested (count=1) but none is visible")
    values.update(changes)
    return gt.Figures(**values)


def _cpu_smoke(**changes) -> gt.Figures:
    """An --allow-cpu run that measured on the CPU with the default strategy."""
    return _no_gpu(**{
        "strategy": "_DefaultDistributionStrategy", "replicas": 1,
        "variable_devices": {CPU0: 12}, "measured": True, "steps_per_epoch": 20,
        "epoch_seconds": [0.2, 0.2], "timed_seconds": 0.5, "examples_per_s": 50_000.0,
        "losses": [3216.4, 3092.2], **changes,
    })


def test_gpus_that_did_the_work_are_ok():
    figures = _mirrored()
    assert gt.verdict(figures) == []
    assert gt.exit_code(figures, []) == gt.EXIT_OK == 0


def test_one_gpu_with_one_device_strategy_is_ok():
    figures = _mirrored(tf_gpus=["/physical_device:GPU:0"], gpus_requested=1, replicas=1,
                        strategy="OneDeviceStrategy", strategy_devices=[GPU0],
                        variable_devices={GPU0: 12}, gpu_stats=[_stats(0)])
    assert gt.verdict(figures) == []


def test_no_gpu_and_no_nvidia_smi_name_both_reasons():
    figures = _no_gpu()
    reasons = gt.verdict(figures)
    assert reasons == ["no GPU visible to TensorFlow", "nvidia-smi not found on PATH"]
    assert gt.exit_code(figures, reasons) == gt.EXIT_FAILED


def test_a_cpu_only_tensorflow_build_is_named():
    reasons = gt.verdict(_no_gpu(built_with_cuda=False))
    assert reasons[0] == "no GPU visible to TensorFlow (this TensorFlow build has no CUDA support)"


def test_a_complete_cpu_smoke_run_exits_3_never_0():
    figures = _cpu_smoke()
    reasons = gt.verdict(figures)
    # The device checks are implied by "no GPU" and not repeated.
    assert reasons == ["no GPU visible to TensorFlow", "nvidia-smi not found on PATH"]
    assert gt.exit_code(figures, reasons) == gt.EXIT_CPU_ONLY == 3


@pytest.mark.parametrize("changes", [
    {"run_error": "ValueError: boom", "measured": False},
    {"losses": [3216.4, float("nan")]},
], ids=["run-failed", "nan-loss"])
def test_a_broken_cpu_smoke_run_is_a_plain_failure(changes):
    figures = _cpu_smoke(**changes)
    assert gt.exit_code(figures, gt.verdict(figures)) == gt.EXIT_FAILED


@pytest.mark.parametrize(("changes", "reason"), [
    ({"gpu_stats": [_stats(0), _stats(1, util_max=0.0)]},
     f"GPU utilisation stayed at 0% on GPU 1 ({GPU1})"),
    ({"gpu_stats": [_stats(0, util_max=0.0), _stats(1, util_max=0.0)]},
     f"GPU utilisation stayed at 0% on GPU 0 ({GPU0})"),
    ({"gpu_stats": [_stats(0), _stats(1, samples=0, util_max=None)]},
     f"no nvidia-smi sample of GPU 1 ({GPU1}) during the timed steps"),
    ({"gpu_stats": [_stats(0, util_max=None), _stats(1)]},
     f"nvidia-smi reports no utilisation for GPU 0 ({GPU0}) ([N/A]; MIG instances do not "
     "report it)"),
    ({"variable_devices": {CPU0: 12}},
     f"model variables are not on GPUs: ['{CPU0}']"),
    ({"variable_devices": {GPU0: 12, CPU0: 2}},
     f"model variables are not on GPUs: ['{CPU0}']"),
    ({"variable_devices": {}}, "model variables are not on GPUs: no variables"),
    ({"strategy": "_DefaultDistributionStrategy", "replicas": 2, "strategy_devices": []},
     "the strategy's devices are not GPUs: none"),
    ({"strategy_devices": [GPU0, CPU0]},
     f"the strategy's devices are not GPUs: ['{GPU0}', '{CPU0}']"),
    ({"gpus_requested": 4}, "asked for 4 GPU(s), the strategy has 2 replica(s)"),
    ({"smi_error": "nvidia-smi not found on PATH", "gpu_stats": []},
     "nvidia-smi not found on PATH"),
    ({"smi_error": "nvidia-smi failed (9): NVIDIA-SMI has failed", "gpu_stats": []},
     "nvidia-smi failed (9): NVIDIA-SMI has failed"),
    ({"mapping_error": "cannot match TensorFlow's GPU:1 to an nvidia-smi GPU",
      "gpu_stats": [_stats(0), _stats(1, used=False)]},
     "cannot match TensorFlow's GPU:1 to an nvidia-smi GPU"),
    ({"gpu_stats": [_stats(0, used=False), _stats(1, used=False)]},
     "no used GPU among nvidia-smi's GPUs"),
    ({"losses": [8000.0, float("inf"), 6500.0]}, "training loss is not finite"),
    ({"measured": False, "run_error": "ResourceExhaustedError: OOM"},
     "the run failed: ResourceExhaustedError: OOM"),
    ({"measured": False}, "no timed steps ran"),
], ids=["one-gpu-idle", "all-idle", "no-samples", "util-not-reported", "variables-on-cpu",
        "some-variables-on-cpu", "no-variables", "default-strategy", "strategy-on-cpu",
        "fewer-replicas", "no-nvidia-smi", "nvidia-smi-failed", "unmatched-gpu",
        "nothing-used", "inf-loss", "run-failed", "not-measured"])
def test_each_missing_proof_fails_with_its_reason(changes, reason):
    figures = _mirrored(**changes)
    reasons = gt.verdict(figures)
    assert any(r.startswith(reason) for r in reasons), reasons
    assert gt.exit_code(figures, reasons) == gt.EXIT_FAILED


def test_parse_smi_reads_numbers_and_not_available():
    rows = gt.parse_smi("0, GPU-aaaa, NVIDIA H100 80GB HBM3, 87, 1234\n"
                        "1, GPU-bbbb, NVIDIA A100-SXM4-40GB, [N/A], [Not Supported]\n")
    assert [(gpu.index, gpu.uuid, gpu.name, util, mem) for gpu, util, mem in rows] == [
        (0, "GPU-aaaa", "NVIDIA H100 80GB HBM3", 87.0, 1234.0),
        (1, "GPU-bbbb", "NVIDIA A100-SXM4-40GB", None, None),
    ]
    with pytest.raises(ValueError, match="unexpected nvidia-smi line"):
        gt.parse_smi("0, NVIDIA H100, 87\n")


SMI_GPUS = [gt.SmiGpu(index=i, uuid=f"GPU-{c * 8}", name="NVIDIA L4") for i, c in
            enumerate("abcd")]


@pytest.mark.parametrize(("tf_index", "cuda_visible", "expected"), [
    (1, None, 1),  # no CUDA_VISIBLE_DEVICES: PCI bus order on both sides
    (7, None, None),
    (0, "2,3", 2),
    (1, "2, 3", 3),
    (2, "2,3", None),
    (0, "GPU-cccc", 2),  # a UUID prefix
    (0, "GPU-", None),  # ambiguous
    (0, "9", None),
])
def test_tf_gpus_map_to_nvidia_smi_indices(tf_index, cuda_visible, expected):
    assert gt.smi_index_for(tf_index, cuda_visible, SMI_GPUS) == expected


def test_gpu_stats_summarise_samples_of_used_gpus():
    samples = {0: [(0.0, 500.0), (90.0, 1500.0), (None, None)], 2: [(10.0, 100.0)]}
    stats = gt.gpu_stats(SMI_GPUS[:3], samples, {0: GPU0})
    assert [(s.index, s.used, s.tf_device, s.samples) for s in stats] == [
        (0, True, GPU0, 3), (1, False, None, 0), (2, False, None, 1)]
    assert (stats[0].util_mean, stats[0].util_max) == (45.0, 90.0)
    assert (stats[0].mem_mean_mib, stats[0].mem_max_mib) == (1000.0, 1500.0)
    assert stats[1].util_max is None


def _fake_smi(tmp_path: Path, monkeypatch, body: str) -> None:
    binary = tmp_path / "nvidia-smi"
    binary.write_text(f"#!/bin/sh\n{body}\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_query_smi_runs_the_binary_on_path(tmp_path, monkeypatch):
    _fake_smi(tmp_path, monkeypatch, 'echo "0, GPU-aaaa, NVIDIA L4, 37, 800"')
    rows, error = gt.query_smi()
    assert error is None
    assert [(gpu.index, util, mem) for gpu, util, mem in rows] == [(0, 37.0, 800.0)]


def test_query_smi_reports_a_failing_driver(tmp_path, monkeypatch):
    _fake_smi(tmp_path, monkeypatch,
              'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA '
              'driver."; exit 9')
    assert gt.query_smi() == (
        [], "nvidia-smi failed (9): NVIDIA-SMI has failed because it couldn't communicate "
        "with the NVIDIA driver.")


def test_query_smi_without_the_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gt.query_smi() == ([], "nvidia-smi not found on PATH")


def test_loading_the_script_does_not_import_tensorflow():
    code = (f"import importlib.util, sys; s = importlib.util.spec_from_file_location('g', "
            f"{str(SCRIPT)!r}); m = importlib.util.module_from_spec(s); sys.modules['g'] = m; "
            "s.loader.exec_module(m); print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_final_line_says_ok_only_for_exit_0():
    ok = _mirrored()
    assert gt.final_line(ok, [], gt.EXIT_OK) == (
        "OK: 2 GPU(s) (MirroredStrategy), 98304 examples/s, utilisation max GPU 0 80%, GPU 1 80%")
    smoke = _cpu_smoke()
    assert gt.final_line(smoke, gt.verdict(smoke), gt.EXIT_CPU_ONLY) == (
        "FAILED: no GPU was used (--allow-cpu run measured the CPU): no GPU visible to "
        "TensorFlow; nvidia-smi not found on PATH")
    idle = _mirrored(gpu_stats=[_stats(0), _stats(1, util_max=0.0)])
    assert gt.final_line(idle, gt.verdict(idle), gt.EXIT_FAILED) == (
        f"FAILED: GPU utilisation stayed at 0% on GPU 1 ({GPU1})")
