"""The run-record store: every run, stage, epoch, registered model and schedule.

SQLAlchemy 2 ORM (`orm.py`), pydantic views and the lifecycle (`schemas.py`), functions
that take an explicit session (`runs.py`), engines (`database.py`) and Alembic migrations
(`migrations/`, applied with `migrate.upgrade`). SQLite under RETRAIN_HOME by default;
PostgreSQL via RETRAIN_DATABASE_URL.
"""
