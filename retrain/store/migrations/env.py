"""Alembic environment: runs migrations on the connection or URL handed over by migrate.py."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from retrain.store.orm import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Migrate on a passed-in connection, or on the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _run(conn)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place: batch mode rebuilds the table.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
