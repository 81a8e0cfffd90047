"""Operations: the API of the `retrain` CLI and of the operation flows.

Each service function owns its transaction and returns pydantic views, never ORM rows.
"""
