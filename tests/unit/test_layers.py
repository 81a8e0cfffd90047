"""The tree is the architecture: layers point one way, with no cycle and no private name
crossing a module (STYLE.md). Function-level imports count everywhere here."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("flows", "tasks", "deployments", "retrain", "blocks", "synthetic")
LINT = Path(sys.executable).with_name("lint-imports")
# The style's bound on a module's length ("~400 lines"); benchmarks and tests are exempt.
MAX_MODULE_LINES = 450


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}, timeout=300)


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                  if "migrations" not in p.parts)


def test_the_layers_contract_holds():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contract_fails_on_a_planted_upward_import(tmp_path):
    """A lazy import from the library up into the stages is caught, and named."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    costs = tmp_path / "retrain" / "domain" / "costs.py"
    costs.write_text(costs.read_text() + "\n\ndef _planted():\n    from tasks.shared import stage\n"
                     "    return stage\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "retrain.domain.costs -> tasks.shared.stage" in result.stdout


def test_no_import_cycle_between_modules():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    edges = {module: {imported for imported in graph.find_modules_directly_imported_by(module)
                      if imported.split(".")[0] in PACKAGES}
             for module in graph.modules if module.split(".")[0] in PACKAGES}
    cycles = _strongly_connected(edges)
    assert cycles == [], f"import cycles: {cycles}"


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in edges.get(node, ()):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _private_uses(path: Path) -> list[str]:
    """`from ours import _name`, and `alias._name` on a module of ours bound by import."""
    tree = ast.parse(path.read_text())
    ours = lambda name: name.split(".")[0] in PACKAGES  # noqa: E731
    aliases: set[str] = set()
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and ours(node.module):
            for name in node.names:
                if name.name.startswith("_") and not name.name.startswith("__"):
                    uses.append(f"{path.relative_to(ROOT)}:{node.lineno} imports "
                                f"{node.module}.{name.name}")
                aliases.add(name.asname or name.name)
        elif isinstance(node, ast.Import):
            for name in node.names:
                if ours(name.name):
                    aliases.add(name.asname or name.name.split(".")[0])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            uses.append(f"{path.relative_to(ROOT)}:{node.lineno} uses "
                        f"{node.value.id}.{node.attr}")
    return uses


def test_no_private_name_is_used_across_modules():
    uses = [use for path in _sources() for use in _private_uses(path)]
    assert uses == []


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_stay_short(package):
    long = {str(p.relative_to(ROOT)): n for p in _sources() if p.parts[len(ROOT.parts)] == package
            and (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}
