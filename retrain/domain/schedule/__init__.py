"""Schedule rules (seed 003), pure: every rule about when a model retrains lives here.

- `spec.py`: `ScheduleSpec` and `ScheduleType`, their validation, `describe`,
  `check_once_in_future`, `skipped_months`.
- `translate.py`: the spec as a Prefect deployment schedule (`to_prefect`,
  `to_prefect_schedule`) and Prefect's own scheduler dates for it.
- `preview.py`: `preview` / `next_run`, the next runs with DST notes; the DST policy.
- `rules.py`: the policies applied to runs: `SchedulePolicy`, the late-slot check
  (`check_slot`), the statistics (`SUCCESSFUL` / `FAILED` / `COUNTED`, the failure streak)
  and the circuit breaker (`breaker_trips`, `pause_reason`).
- `zones.py`: time-zone arithmetic they share (DST gaps and folds, clock changes).
"""
