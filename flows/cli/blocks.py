"""`retrain blocks …`: the connection blocks' types in Prefect (over retrain/services/blocks.py)."""

from __future__ import annotations

from flows.cli.exits import ExitCode


def _register(args) -> int:
    from retrain.services.blocks import register_block_types

    for slug in register_block_types():
        print(f"registered block type {slug}")
    return ExitCode.DONE


def add_parsers(groups) -> None:
    """Add the `blocks` command group to `retrain`."""
    group = groups.add_parser("blocks", help="connection blocks (GCS, MLflow, state store)")
    commands = group.add_subparsers(dest="cmd", required=True)
    commands.add_parser(
        "register", help="register the block types, so the UI's block catalogue offers them"
    ).set_defaults(fn=_register)
