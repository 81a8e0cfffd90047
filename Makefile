# Two entry points for a fresh machine (see README.md): `make demo` and `make test`.
# Each target sets up the pipeline environment first; set-up is skipped when the
# environment already matches requirements.lock, so every target is safe to repeat.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
LOCK_HASH := $(shell sha256sum requirements.lock | cut -c1-16)
STAMP := $(VENV)/.lock-$(LOCK_HASH)
# TFX 1.16 needs Python 3.10; machines of this kind carry one through pyenv.
PY310 := $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10.*/bin/python3.10) $(shell command -v python3.10 2>/dev/null))

# The embedded default: Prefect's SQLite database and results live under .retrain/.
export PREFECT_HOME ?= $(CURDIR)/.retrain/prefect
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

# Left out of the lock and the install: rfc3987-syntax (jsonschema's optional IRI check,
# asked for by jupyter-events) compiles a grammar on import, 3.5 s of every `import prefect`
# (each CLI call, worker and flow-run process) on 2 cores. Nothing here validates IRIs.
EXCLUDES := <(printf 'rfc3987-syntax\n')

# The browser tests (tests/integration/test_ui_browser.py) drive Debian's Chromium through
# Playwright: Playwright's own browser download cannot reach its host from these machines.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: env demo stop test lock chromium

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -n "$(PY310)" || { echo "error: no Python 3.10 found (pyenv install 3.10 or put python3.10 on PATH)"; exit 1; }
	@test -x $(PY) || $(PY310) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip install --python $(PY) --quiet --excludes $(EXCLUDES) -r requirements.lock
	$(VENV)/bin/uv pip install --python $(PY) --quiet --no-deps -e .
	@rm -f $(VENV)/.lock-* && touch $(STAMP)

demo: env
	$(PY) -m flows.demo

# Stops the embedded default's Prefect server that `make demo` left running in the background.
stop: env
	$(VENV)/bin/prefect server stop

# The suite's files run in TEST_PROCESSES processes (pytest-xdist): a file's tests stay in one
# process, so its module fixtures (a Prefect server, a pipeline run) start once. Much of the
# suite waits on servers, workers and subprocesses, so two processes fit two cores.
TEST_PROCESSES ?= 2

test: env chromium
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile

chromium:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
		chromium >/dev/null; }
	@test -x $(CHROMIUM) || { echo "error: $(CHROMIUM) missing after apt-get install chromium"; exit 1; }

lock:
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --python-version 3.10 \
		--python-platform x86_64-unknown-linux-gnu --no-header \
		--excludes $(EXCLUDES) -o requirements.lock
