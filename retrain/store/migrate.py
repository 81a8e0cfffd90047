"""Schema migrations of the run-record store (Alembic), callable from code and the CLI."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from retrain.store.database import engine_for
from retrain.settings import get_settings

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """An Alembic config for this package's migrations on `url` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the store at `url` (default: settings) up to `revision`."""
    url = url or get_settings().resolved_database_url()
    with engine_for(url).connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it and dropping the original; with foreign
            # keys on, that drop would cascade-delete every child row (stages, epochs).
            # The pragma only takes effect outside a transaction, hence before any DML.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()  # end SQLAlchemy's autobegun (empty) transaction
        try:
            with connection.begin():
                config = alembic_config(url)
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def current_revision(url: str | None = None) -> str | None:
    """The revision the store at `url` is at (None when never migrated)."""
    url = url or get_settings().resolved_database_url()
    with engine_for(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
