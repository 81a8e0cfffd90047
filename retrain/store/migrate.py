"""Schema migrations of the run-record store (Alembic), callable from code and the CLI."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from retrain.store.database import engine_for
from retrain.settings import get_settings

MIGRATIONS = Path(__file__).with_name("migrations")
# Any fixed 64-bit key: the PostgreSQL advisory lock every migrating process takes.
PG_LOCK_KEY = 0x7265747261696E  # "retrain"
_THREAD_LOCK = threading.Lock()


def alembic_config(url: str) -> Config:
    """An Alembic config for this package's migrations on `url` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision this package's migrations know."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@contextmanager
def _file_lock(url: str) -> Iterator[None]:
    """An exclusive lock file beside a SQLite store (processes on one machine)."""
    import fcntl

    path = url.split("///", 1)[-1]
    if not path or path == ":memory:":
        yield
        return
    lock = Path(f"{path}.migrate.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the store at `url` (default: settings) up to `revision`.

    Safe under concurrent threads and processes: a store already at the head is left
    alone without a lock; otherwise one migrator at a time holds a lock (a thread lock,
    then a PostgreSQL advisory lock or a lock file beside the SQLite database) and the
    others find the work done when they get it. Without the lock, Alembic's upgrades raced
    (`KeyError: 'script'` in 2 of 10 threads started together).
    """
    url = url or get_settings().resolved_database_url()
    if revision == "head" and current_revision(url) == head_revision():
        return
    sqlite = url.startswith("sqlite")
    with _THREAD_LOCK, (_file_lock(url) if sqlite else _nothing()):
        with engine_for(url).connect() as connection:
            if sqlite:
                # SQLite alters a table by copying it and dropping the original; with foreign
                # keys on, that drop would cascade-delete every child row (stages, epochs).
                # The pragma only takes effect outside a transaction, hence before any DML.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()  # end SQLAlchemy's autobegun (empty) transaction
            try:
                with connection.begin():
                    if not sqlite:  # held until this transaction ends
                        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})")
                    config = alembic_config(url)
                    config.attributes["connection"] = connection
                    command.upgrade(config, revision)
            finally:
                if sqlite:
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    connection.commit()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def current_revision(url: str | None = None) -> str | None:
    """The revision the store at `url` is at (None when never migrated)."""
    url = url or get_settings().resolved_database_url()
    with engine_for(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
