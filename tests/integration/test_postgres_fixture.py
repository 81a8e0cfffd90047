"""The session's PostgreSQL server: the version the state store targets, isolated
per-test databases, and room for many concurrent connections."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

pytestmark = pytest.mark.service


def test_server_is_postgresql_15(postgres_url: str):
    with sa.create_engine(postgres_url, poolclass=NullPool).connect() as conn:
        version = conn.execute(sa.text("select version()")).scalar_one()
        database = conn.execute(sa.text("select current_database()")).scalar_one()
    assert version.startswith("PostgreSQL 15."), version
    assert database == "retrain"


# Two instances of the same test: whichever runs second would find the other's table
# (or its database left behind) if per-test databases were shared or not dropped.
@pytest.mark.parametrize("instance", [1, 2])
def test_each_test_gets_its_own_empty_database(postgres_db: str, postgres_url: str, instance: int):
    engine = sa.create_engine(postgres_db, poolclass=NullPool)
    with engine.begin() as conn:
        assert sa.inspect(conn).get_table_names() == []
        conn.execute(sa.text("create table runs (id integer primary key)"))
        conn.execute(sa.text("insert into runs values (:id)"), {"id": instance})
        mine = conn.execute(sa.text("select current_database()")).scalar_one()

    with sa.create_engine(postgres_url, poolclass=NullPool).connect() as conn:
        assert not sa.inspect(conn).has_table("runs")
        per_test = conn.execute(
            sa.text("select datname from pg_database where datname not in ('retrain', 'postgres')")
        ).scalars()
        assert [name for name in per_test if not name.startswith("template")] == [mine]


def test_fifty_concurrent_connections(postgres_url: str):
    workers = 50
    engine = sa.create_engine(postgres_url, poolclass=NullPool)
    # Every thread holds its connection open until all 50 are open: they are truly concurrent.
    all_connected = threading.Barrier(workers, timeout=60)

    def query(i: int) -> tuple[int, int]:
        try:
            conn = engine.connect()
        except Exception:
            all_connected.abort()  # the others fail now rather than at the timeout
            raise
        with conn:
            all_connected.wait()
            pid = conn.execute(sa.text("select pg_backend_pid()")).scalar_one()
            return pid, conn.execute(sa.text("select :i * 2"), {"i": i}).scalar_one()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(query, range(workers)))

    assert [doubled for _, doubled in results] == [i * 2 for i in range(workers)]
    assert len({pid for pid, _ in results}) == workers
