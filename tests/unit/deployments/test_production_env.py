"""deployments/production.env: every line is a Prefect setting that takes effect (Prefect
ignores an unknown or misspelt variable without a word)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ENV_FILE = Path(__file__).resolve().parents[3] / "deployments" / "production.env"


def _entries() -> dict[str, str]:
    entries = {}
    for line in ENV_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key == key.strip().upper(), f"not KEY=VALUE: {line!r}"
            entries[key] = value
    return entries


def test_every_entry_is_a_prefect_setting_and_changes_it():
    entries = _entries()
    assert entries, "no settings in production.env"
    # A fresh interpreter with only these variables: what Prefect reads from them.
    code = (
        "import json\n"
        "from prefect.settings import Settings\n"
        "flat = Settings().to_environment_variables(exclude_unset=True)\n"
        "print(json.dumps(flat))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(entries)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    read = json.loads(out.stdout.strip().splitlines()[-1])
    for key, value in entries.items():
        assert key in read, f"{key} is not a Prefect setting (Prefect ignored it)"
        assert _same(read[key], value), (key, read[key], value)


def _same(read: str, written: str) -> bool:
    """Prefect's rendering of a value (60.0, [500]) against the file's (60, 500)."""
    def parts(text: str) -> list[str]:
        return sorted(p.strip() for p in str(text).strip("[]{}").split(",") if p.strip())

    def number(text: str) -> float | str:
        try:
            return float(text)
        except ValueError:
            return text

    return [number(p) for p in parts(read)] == [number(p) for p in parts(written)]


def test_the_server_waits_longer_than_prefects_defaults_and_clients_retry_500():
    entries = _entries()
    assert float(entries["PREFECT_SERVER_DATABASE_TIMEOUT"]) > 10  # Prefect's default
    assert float(entries["PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT"]) > 5
    assert "500" in entries["PREFECT_CLIENT_RETRY_EXTRA_CODES"].split(",")
