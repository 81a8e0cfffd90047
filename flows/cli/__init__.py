"""The `retrain` command line: parsers and rendering over `retrain.services` only."""

from flows.cli.main import main

__all__ = ["main"]
