"""The retrain library: domain, store, services and adapters under the Prefect layers.

It imports nothing from `flows`, `tasks` or `deployments` (the layers contract in
pyproject.toml, checked by the test suite). Inside it, `services` use `store` and `adapters`,
and those use `domain`; `settings` sits under everything.
"""
