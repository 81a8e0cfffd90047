"""The benchmark scripts sit side by side in benchmarks/, not in a package: tests load them
from their paths."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"


def load_benchmark(file_name: str, module_name: str) -> ModuleType:
    """``benchmarks/<file_name>`` as the module ``module_name``, registered in sys.modules
    (dataclasses and pydantic resolve annotations through it), with benchmarks/ on the path
    for the scripts' imports of each other (``measure``, ``peers``)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / file_name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
