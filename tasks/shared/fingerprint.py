"""Stage fingerprints: what a stage's output depends on, hashed without importing TensorFlow.

A fingerprint covers the stage's own config, its upstream fingerprints, the contents of the
files it reads (data files for ExampleGen, the user module for Transform and Trainer) and the
versions of the libraries that produce its output.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from typing import Any, Iterable

from pydantic import BaseModel

from retrain.domain.config import is_remote
from retrain.domain.stages import Stage

LIBRARIES = (
    "tfx",
    "tensorflow",
    "tensorflow-data-validation",
    "tensorflow-transform",
    "tensorflow-model-analysis",
    "apache-beam",
    "retrain",
)


class InputDataError(ValueError):
    """The input location is missing, unreadable or matches no files."""


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries whose output a cached artifact reflects."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def _fs(uri: str) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(uri)


def file_digest(path: str) -> str:
    """Content hash of a local file; the store's own checksum (ukey) for remote objects."""
    if is_remote(path):
        fs, p = _fs(path)
        return f"ukey:{fs.ukey(p)}"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_data_files(uri: str, pattern: str) -> list[str]:
    """The files ExampleGen will read, sorted; raises InputDataError when there are none."""
    fs, base = _fs(uri)
    if not fs.exists(base):
        raise InputDataError(f"input path {uri!r} does not exist")
    if not fs.isdir(base):
        raise InputDataError(f"input path {uri!r} is not a directory")
    matches = sorted(p for p in fs.glob(f"{base.rstrip('/')}/{pattern}") if fs.isfile(p))
    if not matches:
        raise InputDataError(f"no files match {pattern!r} under {uri!r}")
    if is_remote(uri):
        protocol = uri.split("://", 1)[0]
        return [f"{protocol}://{p}" for p in matches]
    return matches


def _canonical(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    return value


def fingerprint(stage: Stage, parts: dict[str, Any], files: Iterable[str] = ()) -> str:
    """Hash a stage's config parts, upstream fingerprints and file contents."""
    payload = {
        "stage": stage,
        "parts": {key: _canonical(value) for key, value in sorted(parts.items())},
        "files": [file_digest(path) for path in files],
        "libraries": library_versions(),
    }
    encoded = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()


def module_sources(module_file: str) -> list[str]:
    """The files a user module's wheel is built from: every .py file in its directory.

    TFX packages the whole directory, so a change to a helper module beside the user module
    must invalidate the cache as well.
    """
    if is_remote(module_file):
        return [module_file]
    from pathlib import Path

    return sorted(str(path) for path in Path(module_file).resolve().parent.glob("*.py"))
