"""The session factory of this process's store, migrated on first use."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from retrain.settings import get_settings
from retrain.store.database import session_maker
from retrain.store.migrate import upgrade


@lru_cache(maxsize=4)
def _sessions(url: str) -> sessionmaker[Session]:
    upgrade(url)  # once per process and store: the embedded default needs no set-up step
    return session_maker(url)


def sessions() -> sessionmaker[Session]:
    """Sessions on this process's store (RETRAIN_DATABASE_URL, else the embedded SQLite),
    migrated to the newest revision the first time this process asks."""
    return _sessions(get_settings().resolved_database_url())
