"""The pipeline environment as requirements.lock builds it."""

from __future__ import annotations

import subprocess
import sys


def test_importing_prefect_does_not_compile_the_iri_grammar():
    """rfc3987-syntax builds a lark grammar on import: 3.5 s of every `import prefect` (each
    CLI call, worker and flow-run process) on 2 cores. `make lock` excludes it; a lock
    regenerated without the exclusion brings it back and this fails."""
    probe = "import sys, prefect; print(sorted({'rfc3987_syntax', 'lark'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
    # jsonschema, which asked for it, still validates without it.
    import jsonschema

    jsonschema.validate({"a": 1}, {"type": "object", "properties": {"a": {"type": "integer"}}})
