"""Engines and sessions for the run-record store (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from retrain.settings import get_settings


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL + a busy timeout let concurrent writers
    # wait for each other instead of failing with "database is locked".
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class StoreUnavailable(ConnectionError):
    """The state store's database could not be reached; the message names it (password
    masked) and the driver's first line."""


def _unreachable(context) -> StoreUnavailable | None:
    """SQLAlchemy's handle_error hook: a refused or dropped connection becomes one
    readable error naming the store; anything else (a bad query) stays as it is."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    error = context.sqlalchemy_exception
    if not isinstance(error, (OperationalError, InterfaceError)):
        return None
    if context.connection is not None and not context.is_disconnect:
        return None  # a statement failed on a working connection (e.g. SQLite's "locked")
    original = context.original_exception
    reason = str(original).strip().splitlines()[0] if str(original).strip() else type(
        original).__name__
    url = context.engine.url.render_as_string(hide_password=True)
    return StoreUnavailable(f"state store at {url} could not be reached: {reason}")


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process; a store that cannot be reached raises
    `StoreUnavailable`."""
    if url.startswith("sqlite"):
        from pathlib import Path

        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=40)
    event.listen(engine, "handle_error", _unreachable)
    return engine


def session_maker(url: str | None = None) -> sessionmaker[Session]:
    """Sessions on the given URL, or the settings' store."""
    return sessionmaker(engine_for(url or get_settings().resolved_database_url()),
                        expire_on_commit=False)
