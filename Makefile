# The two commands: `make run` (the embedded portal) and `make test` (checks + the whole suite).
VENV    ?= .venv
PY      := $(VENV)/bin/python
FLASK   := $(VENV)/bin/flask --app wsgi
# Parallel on every core (pytest-xdist), at most 12 workers (each needs a Redis database
# of its own below TEST_REDIS_URL's 15, never db 0); `make test PYTEST_ARGS=` runs in one
# process.
# loadgroup keeps the browser tests (marker e2e) on one worker, one Chromium at a time
# (tests/plugin.py, SERIAL_GROUPS); every worker has a Redis database of its own.
PYTEST_ARGS ?= -n auto --maxprocesses 12 --dist loadgroup

.PHONY: run test pytest lint install install-test browser migrate demo serve clean sim messages coverage

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

# `make run PORT=8000 HOST=0.0.0.0`: payments follow the port (README, Quick start).
PORT ?= 5000
HOST ?= 127.0.0.1
run: install
	$(FLASK) db upgrade
	$(FLASK) demo load
	$(FLASK) serve --host $(HOST) --port $(PORT)

test: lint pytest

# Lint, format and the import contracts (pyproject: [tool.ruff], [tool.importlinter]).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

# PostgreSQL and Redis: the ones TEST_POSTGRES_URL / TEST_REDIS_URL name when they answer,
# else throwaway servers started for the run over the Debian binaries (installed when
# missing) and stopped after it (tools/services.py).
pytest: install browser
	$(PY) tools/services.py -- $(PY) -m pytest $(PYTEST_ARGS)

# Browser tests drive Debian's Chromium; install it when missing (root on a fresh machine).
browser:
	@test -x /usr/bin/chromium || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }
	@test -x /usr/bin/chromium

# The seeded fault simulation (tests/sim, docs/testing.md): random but reproducible
# histories with injected faults, every invariant checked after every step. CI runs 200
# seeds; a longer run: `make sim SIM_ARGS="--seeds 2000 --start 1000"`; replay one
# failure: `make sim SIM_ARGS="--seed 17 -v"`; on PostgreSQL: SIM_ARGS="--postgres".
SIM_ARGS ?= --seeds 200
# The suite with a coverage summary (pytest-cov; terminal, no threshold): not in .ci/run,
# which it would slow by a quarter (docs/testing.md, "CI's time").
coverage: install browser
	$(PY) tools/services.py -- $(PY) -m pytest $(PYTEST_ARGS) --cov --cov-report=term:skip-covered

sim: install
	$(PY) -m tests.sim $(SIM_ARGS)

migrate: install
	$(FLASK) db upgrade

clean:
	rm -rf $(VENV) instance .pytest_cache .coverage .coverage.*

# The HTTP benchmark of the production process model (gunicorn, RQ worker, cron, sandbox) on
# the machine's PostgreSQL and Redis (db 9): prints figures. BENCH_ARGS="--runs 3" for medians.
# Installs only when the virtualenv is missing (the venv may be shared between checkouts).
BENCH_ARGS ?=
.PHONY: bench
bench:
	test -x $(PY) || $(MAKE) install
	@command -v wrk >/dev/null || { \
	  echo "Installing Debian's wrk (the load client for the cheap endpoints)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >/dev/null; }
	$(PY) -m tests.load.bench_http $(BENCH_ARGS)

# The production process model on this machine (Procfile, run by honcho): gunicorn with 4
# sync workers, the RQ worker, the cron and the sandbox (2 processes sharing one state)
# against the machine's PostgreSQL and Redis. Settings: instance/prod.env, written once by
# tools/prod_env.py (PROD_DATABASE_URL, PROD_REDIS_URL, PROD_WEB_PORT, PROD_SANDBOX_PORT).
# docs/deploy.md has the same on many machines.
.PHONY: prod
prod:
	test -x $(PY) || $(MAKE) install
	$(PY) tools/prod_env.py
	$(VENV)/bin/honcho -e instance/prod.env run $(FLASK) db upgrade
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/honcho -e instance/prod.env -f Procfile start

# The message catalogues (docs/i18n.md): extract every marked string from the code and the
# templates, then merge it into each language's messages.po for translating. The .mo files
# are compiled when the app starts (portal.i18n.compile_catalogues).
messages: install
	$(PY) tools/messages.py
