"""Schedule rules (seed 003): the spec, its Prefect translation and preview with DST rules,
and the policies applied to runs (late slots, statistics, the circuit breaker)."""
