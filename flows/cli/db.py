"""`retrain db …`: the state store's schema (over `retrain/services/database.py`)."""

from __future__ import annotations

from flows.cli.exits import ExitCode


def _upgrade(args) -> int:
    from retrain.services.database import upgrade_store

    print(f"state store at revision {upgrade_store()}")
    return ExitCode.DONE


def add_parsers(groups) -> None:
    """Add the `db` command group to `retrain`."""
    db = groups.add_parser("db", help="the state store").add_subparsers(dest="cmd", required=True)
    db.add_parser("upgrade", help="migrate to the newest schema").set_defaults(fn=_upgrade)
