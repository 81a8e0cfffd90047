"""Typed configuration, enums and rules: no database, no Prefect client, no I/O at import."""
