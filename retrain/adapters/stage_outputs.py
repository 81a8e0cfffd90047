"""A finished stage's output reference, read back from its completion marker.

Every stage writes `_COMPLETE.json` last into its output directory: the JSON of the
StageOutput it returned (artifact URIs, fingerprint, and the stage's own fields). An
operation on a finished run (pushing a blessed run later) reads its stages from there.
"""

from __future__ import annotations

import json
from typing import Any

MARKER = "_COMPLETE.json"


def read_marker(output_dir: str) -> dict[str, Any] | None:
    """The StageOutput JSON of the stage that wrote `output_dir`, or None if it never
    finished there (or its artifacts were deleted)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(f"{output_dir.rstrip('/')}/{MARKER}")
    if not fs.exists(path):
        return None
    return json.loads(fs.cat_file(path))
