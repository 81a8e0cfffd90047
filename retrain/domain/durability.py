"""Which of a run's stores would be lost with its container.

A container's own filesystem (a Kubernetes pod's, a Cloud Run job's, …) is deleted with it.
A run in one that records to SQLite under its home, registers in a local MLflow store or
writes its artifacts and pushed models to a local path reports success, and then all of it is
gone: the next run finds no champion to compare with, the run list never shows it. So a run
a worker started in a container checks its stores first and refuses, naming each one and its
setting, unless the path is under a volume the container keeps (`RETRAIN_PERSISTENT_VOLUMES`:
a PersistentVolumeClaim or hostPath mount).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Sequence


class Store(str, enum.Enum):
    """A place a run writes to that must outlive it."""

    RUN_STORE = "run store"
    MLFLOW_TRACKING = "MLflow tracking and registry"
    MLFLOW_ARTIFACTS = "MLflow artifact root"
    PIPELINE_ROOT = "pipeline root"
    SERVING_BASE = "serving base"


# What each store's location is set by, and what a container wants there instead.
FIX: dict[Store, str] = {
    Store.RUN_STORE: "set RETRAIN_DATABASE_URL (postgresql+psycopg://…) or RETRAIN_DATABASE_BLOCK",
    Store.MLFLOW_TRACKING: "set RETRAIN_MLFLOW_BLOCK, or RETRAIN_MLFLOW_TRACKING_URI to a "
                           "server (https://…) or a database (postgresql://…)",
    Store.MLFLOW_ARTIFACTS: "set the MLflow block's artifact_root or RETRAIN_MLFLOW_ARTIFACT_ROOT "
                            "(gs://…)",
    Store.PIPELINE_ROOT: "set the config's pipeline_root (or RETRAIN_PIPELINE_ROOT) to gs://…",
    Store.SERVING_BASE: "set the config's pusher.serving_base (or RETRAIN_SERVING_BASE) to gs://…",
}

# MLflow tracking URIs without a scheme that name a hosted server.
_MLFLOW_REMOTE_WORDS = ("databricks", "databricks-uc")


@dataclass(frozen=True)
class LocalStore:
    """A store whose location is on the container's own disk."""

    store: Store
    path: str

    def describe(self) -> str:
        """'the run store (/home/…/state.db): set …'."""
        return f"the {self.store.value} ({self.path}): {FIX[self.store]}"


def local_path(location: str) -> str | None:
    """The file-system path `location` names on this machine, or None when it is remote.

    Plain paths and file: URIs are local; so are sqlite URLs (their database file, or
    ':memory:'). Any other scheme (gs://, s3://, https://, postgresql://) is not, nor is
    MLflow's `databricks`.
    """
    if location in _MLFLOW_REMOTE_WORDS:
        return None
    scheme, sep, rest = location.partition(":")
    if not sep or "/" in scheme:
        return location  # a plain path
    scheme = scheme.split("+", 1)[0]
    if scheme == "sqlite":  # sqlite:///relative.db, sqlite:////absolute.db, sqlite://
        return rest[3:] if rest.startswith("///") else ":memory:"
    if scheme == "file":  # file:///absolute, file:/absolute
        return "/" + rest.lstrip("/")
    return None


def lost_with_container(locations: dict[Store, str | None],
                        persistent_volumes: Sequence[str] = ()) -> list[LocalStore]:
    """The stores of `locations` (None: not used) that lie on the container's own disk, i.e.
    at a local path under none of `persistent_volumes`."""
    kept = [PurePosixPath(volume) for volume in persistent_volumes if volume]
    lost = []
    for store, location in locations.items():
        path = local_path(location) if location else None
        if path is None:
            continue
        pure = PurePosixPath(path)
        if pure.is_absolute() and any(pure == volume or volume in pure.parents
                                      for volume in kept):
            continue
        lost.append(LocalStore(store, path))
    return lost


def refusal(container: str, lost: Sequence[LocalStore]) -> str:
    """One message for a run that must not start in its container ('work pool … (type)')."""
    return (f"this run is in a container ({container}), whose disk is deleted with it, and "
            "would keep there " + "; ".join(s.describe() for s in lost) + ". Nothing was "
            "run. (A path on a volume the container keeps can be named in "
            "RETRAIN_PERSISTENT_VOLUMES.)")
