"""Prefect blocks of retrain's connections (blocks/): registering their types, so the UI's
block catalogue offers them."""

from __future__ import annotations

from retrain.adapters.prefect import api_retries


def register_block_types() -> list[str]:
    """Register (or update) every retrain block type and schema on the Prefect API; their
    slugs, in blocks.BLOCK_TYPES order."""
    import blocks

    with api_retries():
        for block_type in blocks.BLOCK_TYPES:
            block_type.register_type_and_schema()
    return [block_type.get_block_type_slug() for block_type in blocks.BLOCK_TYPES]
