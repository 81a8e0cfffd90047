"""Generate a synthetic interaction data set: planted factors, sharded data files, manifest."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from synthetic.config import OutputFormat, SyntheticConfig
from synthetic.planted import plant_factors, save_planted
from synthetic.sampling import COLUMNS, ChunkSampler
from synthetic.writers import ShardedWriter

MANIFEST_NAME = "manifest.json"
# A sub-directory, so that input globs over out_dir (e.g. ``out_dir/*.csv``) never see it.
PLANTED_DIR = "_planted"
FACTORS_NAME = "planted_factors.npz"
MANIFEST_VERSION = 1
_DATA_GLOBS = ("data-*-of-*.csv", "data-*-of-*.parquet", "data-*-of-*.tfrecord")
_TEMP_GLOBS = (".data-*-of-*.tmp", f".{MANIFEST_NAME}.tmp", f"{PLANTED_DIR}/.{FACTORS_NAME}.tmp")


class SyntheticFile(BaseModel):
    """One data shard as recorded in the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="File name relative to the data set directory.")
    rows: int = Field(ge=0, description="Number of rows in the file.")
    sha256: str = Field(description="Hex SHA-256 of the file's bytes, for fingerprinting.")


class SyntheticDataset(BaseModel):
    """Reference to a generated data set on local disk (what a task passes on, not the data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    out_dir: Path = Field(description="Directory holding the data files and the manifest.")
    format: OutputFormat = Field(description="Format of the data files.")
    rows: int = Field(ge=0, description="Total number of rows over all data files.")
    files: list[Path] = Field(description="Absolute paths of the data files, in shard order.")
    file_pattern: str = Field(
        description="Glob, relative to out_dir, matching exactly the data files "
        "(an ExampleGen input pattern)."
    )
    factors_path: Path = Field(description="Path of the planted factors (.npz, see load_planted).")
    manifest_path: Path = Field(
        description="Path of manifest.json; written last, it marks the data set complete."
    )
    config: SyntheticConfig = Field(description="Config the data set was generated from.")


def generate(
    config: SyntheticConfig, out_dir: str | Path, *, overwrite: bool = False
) -> SyntheticDataset:
    """Generate ``config.rows`` rows into sharded files under ``out_dir``.

    Writes ``data-XXXXX-of-YYYYY.<format>``, ``_planted/planted_factors.npz`` and, last,
    ``manifest.json``. Memory stays flat in the row count (chunked sampling and streaming
    writers). Raises ``FileExistsError`` if ``out_dir`` already holds a data set, unless
    ``overwrite`` is set, in which case the old one is removed first.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir, overwrite)
    planted_dir = out_dir / PLANTED_DIR
    planted_dir.mkdir(exist_ok=True)
    factors_path = planted_dir / FACTORS_NAME
    factors_temp = planted_dir / f".{FACTORS_NAME}.tmp"

    planted = plant_factors(config)
    writer = ShardedWriter(out_dir, config.format, config.rows_per_file, config.num_files)
    try:
        save_planted(planted, factors_temp)
        for chunk in ChunkSampler(config, planted):
            writer.write(chunk)
        writer.close()
        written = sum(writer.rows_per_shard)
        if written != config.rows:
            raise RuntimeError(f"generated {written} rows, expected {config.rows}")
    except BaseException:
        writer.abort()
        factors_temp.unlink(missing_ok=True)
        raise
    files = writer.publish()
    os.replace(factors_temp, factors_path)

    records = [
        SyntheticFile(name=path.name, rows=rows, sha256=_sha256(path))
        for path, rows in zip(files, writer.rows_per_shard)
    ]
    manifest_path = out_dir / MANIFEST_NAME
    manifest = {
        "version": MANIFEST_VERSION,
        # Unset optional knobs (None) are left out: the manifest of a config that does not
        # use them stays what it was before they existed.
        "config": config.model_dump(mode="json", exclude_none=True),
        "format": config.format,
        "rows": written,
        "columns": list(COLUMNS),
        "file_pattern": _file_pattern(config),
        "files": [record.model_dump() for record in records],
        "factors": f"{PLANTED_DIR}/{FACTORS_NAME}",
    }
    _write_text_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return _dataset(out_dir, config, files, written)


def read_dataset(out_dir: str | Path) -> SyntheticDataset:
    """Reference to a previously generated data set; raises FileNotFoundError if incomplete."""
    out_dir = Path(out_dir).resolve()
    manifest_path = out_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no complete synthetic data set in {out_dir} (no {MANIFEST_NAME})")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    config = SyntheticConfig.model_validate(manifest["config"])
    files = [out_dir / record["name"] for record in manifest["files"]]
    return _dataset(out_dir, config, files, int(manifest["rows"]))


def _dataset(
    out_dir: Path, config: SyntheticConfig, files: list[Path], rows: int
) -> SyntheticDataset:
    return SyntheticDataset(
        out_dir=out_dir,
        format=config.format,
        rows=rows,
        files=files,
        file_pattern=_file_pattern(config),
        factors_path=out_dir / PLANTED_DIR / FACTORS_NAME,
        manifest_path=out_dir / MANIFEST_NAME,
        config=config,
    )


def _file_pattern(config: SyntheticConfig) -> str:
    return f"data-*-of-{config.num_files:05d}.{config.file_extension}"


def _clear_previous(out_dir: Path, overwrite: bool) -> None:
    """Refuse to mix two data sets in one directory; with overwrite, remove the old one.

    Leftover temporary files come from a crashed run and are always removed.
    """
    for pattern in _TEMP_GLOBS:
        for path in out_dir.glob(pattern):
            path.unlink()
    previous = [p for pattern in _DATA_GLOBS for p in sorted(out_dir.glob(pattern))]
    manifest = out_dir / MANIFEST_NAME
    factors = out_dir / PLANTED_DIR / FACTORS_NAME
    existing = previous + [p for p in (manifest, factors) if p.exists()]
    if not existing:
        return
    if not overwrite:
        raise FileExistsError(
            f"{out_dir} already holds a synthetic data set ({existing[0].name}, ...); "
            "pass overwrite=True or choose another directory"
        )
    # The manifest goes first: from then on the directory no longer claims to be complete.
    manifest.unlink(missing_ok=True)
    for path in previous:
        path.unlink()
    factors.unlink(missing_ok=True)


def _write_text_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
