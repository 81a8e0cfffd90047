"""The typed errors of the service layer: what the CLI routes to its exit codes by class.

- an invalid config raises pydantic's `ValidationError` (every bad field listed);
- an invalid schedule raises `InvalidSchedule`, which wraps the `ValidationError`;
- an unknown run, model or deployment raises `NotFound` (a `LookupError`; the store's
  own lookups raise `LookupError`);
- an operation the state does not allow raises `OperationRefused`;
- a run in a container (a Kubernetes pod) whose stores would be deleted with it raises
  `StoresInContainer` (`retrain/services/durability.py`).

Nothing is written when any of them is raised.
"""

from __future__ import annotations

from pydantic import ValidationError


class OperationRefused(RuntimeError):
    """The run's (or schedule's) state does not allow the operation; the message says why."""


class NotFound(LookupError):
    """No run, registered model or deployment of that name or id."""


class InvalidSchedule(ValueError):
    """A schedule's spec or policy failed validation; `error` lists every bad field."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(f"invalid schedule: {error.error_count()} problem(s)")
        self.error = error


class StoresInContainer(ValueError):
    """A run in a container (a Kubernetes pod) would keep a store on the container's own
    disk; the message names the work pool, each store, its path and the setting that moves
    it."""
