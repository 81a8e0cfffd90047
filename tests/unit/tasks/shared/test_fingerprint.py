"""Fingerprints change exactly when what a stage reads changes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tasks.shared.fingerprint import (
    InputDataError,
    fingerprint,
    list_data_files,
    module_sources,
)


def test_same_inputs_same_fingerprint_and_content_changes_it(tmp_path):
    data = tmp_path / "a.csv"
    data.write_text("x\n1\n")
    first = fingerprint("ExampleGen", {"cfg": 1}, [str(data)])
    assert fingerprint("ExampleGen", {"cfg": 1}, [str(data)]) == first
    data.write_text("x\n2\n")
    assert fingerprint("ExampleGen", {"cfg": 1}, [str(data)]) != first


def test_config_upstream_and_stage_all_matter():
    base = fingerprint("Trainer", {"steps": 10, "upstream": "abc"})
    assert fingerprint("Trainer", {"steps": 11, "upstream": "abc"}) != base
    assert fingerprint("Trainer", {"steps": 10, "upstream": "abd"}) != base
    assert fingerprint("Evaluator", {"steps": 10, "upstream": "abc"}) != base


def test_library_versions_are_part_of_the_fingerprint(monkeypatch):
    import tasks.shared.fingerprint as fp

    base = fingerprint("Transform", {"a": 1})
    monkeypatch.setattr(fp, "library_versions", lambda: {"tfx": "9.9.9"})
    assert fingerprint("Transform", {"a": 1}) != base


def test_list_data_files_sorted_and_filtered(tmp_path):
    for name in ("b.csv", "a.csv", "notes.txt"):
        (tmp_path / name).write_text("x\n1\n")
    (tmp_path / "_planted").mkdir()
    files = list_data_files(str(tmp_path), "*.csv")
    assert [p.rsplit("/", 1)[1] for p in files] == ["a.csv", "b.csv"]


@pytest.mark.parametrize(
    "make, pattern, expected",
    [
        (lambda p: p / "missing", "*", "does not exist"),
        (lambda p: (p / "f.csv").write_text("x") and p / "f.csv", "*", "is not a directory"),
        (lambda p: p, "*.parquet", "no files match"),
    ],
)
def test_list_data_files_errors_name_the_problem(tmp_path, make, pattern, expected):
    with pytest.raises(InputDataError, match=expected):
        list_data_files(str(make(tmp_path)), pattern)


def test_module_sources_cover_the_whole_module_directory(tmp_path):
    (tmp_path / "model.py").write_text("")
    (tmp_path / "helpers.py").write_text("")
    (tmp_path / "README.md").write_text("")
    sources = module_sources(str(tmp_path / "model.py"))
    assert [s.rsplit("/", 1)[1] for s in sources] == ["helpers.py", "model.py"]


def test_planning_modules_do_not_import_tensorflow():
    """Cache keys are computed on every run; they must never pay for a TensorFlow import."""
    code = (
        "import sys\n"
        "import flows.training_pipeline, tasks.shared.caching, tasks.shared.fingerprint\n"
        "import tasks.example_gen.core, tasks.trainer.core, tasks.evaluator.core\n"
        "print('tensorflow' in sys.modules, 'tfx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
