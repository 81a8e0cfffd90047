"""The state store itself: bring its schema up to date (`retrain db upgrade`)."""

from __future__ import annotations

from retrain.store import migrate


def upgrade_store() -> str | None:
    """Migrate the configured store to the newest schema; returns the revision it is at."""
    migrate.upgrade()
    return migrate.current_revision()
