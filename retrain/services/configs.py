"""Pipeline configs: read from a user's file, and read back from a run record.

A file is validated whole (`load_config`: every bad field listed, the local files it names
must exist). A stored snapshot is read back through `PipelineConfig.from_snapshot`: its
files may be gone since. A record whose snapshot is no valid config at all (a flow run
that died on its config still gets a record) reads back as None.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from retrain.domain.config import PipelineConfig
from retrain.settings import get_settings
from retrain.store.orm import TrainingRun


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML (.yaml/.yml) or JSON (.json) file; ValueError names the problem."""
    import yaml

    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise ValueError(f"{path}: config files are .yaml, .yml or .json")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path} is not valid {path.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of config fields, got {type(data).__name__}")
    return data


def load_config(path: str | Path) -> PipelineConfig:
    """A validated pipeline config from a file (pydantic's error lists every bad field)."""
    return PipelineConfig.model_validate(read_config_file(path))


def stored_config(snapshot: dict[str, Any] | None) -> PipelineConfig | None:
    """A run record's config snapshot as a config, or None if it is not a valid one."""
    try:
        return PipelineConfig.from_snapshot(snapshot or {})
    except ValidationError:
        return None


def epochs(config: PipelineConfig | None) -> int:
    """Passes over the data a config trains for: a user module's run_fn counts as one."""
    return config.training.epochs if config is not None and config.model is not None else 1


def run_dir(run: TrainingRun) -> str:
    """`<pipeline_root>/<model>/runs/<run_number>`: files that belong to this run alone."""
    config = stored_config(run.config)
    root = (config.pipeline_root if config is not None
            else get_settings().resolved_pipeline_root()).rstrip("/")
    return f"{root}/{run.registered_model.name}/runs/{run.run_number}"
