# One command to run the service on the embedded default, one to pass the tests.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app wsgi
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test test-browser screenshots lint bench migrate clean i18n fuzz lock audit

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# The lock files pin every package, pip included, with the hashes of its released files: a file that is not the
# one locked (a tampered mirror, a re-uploaded release) stops the install. requirements*.txt are their inputs.
$(VENV)/.installed: requirements.lock requirements-dev.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

## lock: re-resolve requirements*.txt into the hashed lock files after changing them (keeps the current pins where
## they still fit; LOCK_UPGRADE=1 takes the newest releases allowed). Resolved against PyPI itself.
LOCK_FLAGS := --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
              $(if $(LOCK_UPGRADE),--upgrade)
lock: $(BIN)/python
	@test -x $(BIN)/pip-compile || $(BIN)/python -m pip install --quiet pip-tools==7.6.2
	PIP_CONFIG_FILE=/dev/null $(BIN)/pip-compile $(LOCK_FLAGS) -o requirements.lock requirements.txt
	PIP_CONFIG_FILE=/dev/null $(BIN)/pip-compile $(LOCK_FLAGS) -o requirements-dev.lock requirements-dev.txt

## audit: known vulnerabilities in the locked dependencies (pip-audit, PyPI's advisory data); fails on one, and
## says so without failing when the service cannot be reached (AUDIT_STRICT=1: fail then too)
audit: $(VENV)/.installed
	BIN=$(BIN) .ci/audit

migrate: $(VENV)/.installed
	$(FLASK) db upgrade

## run: set up, migrate, seed the demo estate and serve on SQLite with in-process jobs; prints a demo API key
run: export PUBLIC_URL ?= http://$(HOST):$(PORT)
run: migrate
	@$(FLASK) demo seed
	@$(FLASK) demo setup
	@$(FLASK) portal demo
	@$(FLASK) operators demo
	$(FLASK) run --host $(HOST) --port $(PORT)

## test: set up and run the whole suite (SQLite and PostgreSQL, real Redis)
test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

## fuzz: schemathesis (every check) against a live server on PostgreSQL for FUZZ_SECONDS (20 minutes); the
## report goes to fuzz-report/ (tests/service/test_fuzz.py, in make test, is the bounded pass: about 3 minutes)
## (FUZZ_PHASES=examples,coverage,fuzzing,stateful adds the coverage phase, which is not bounded by the time)
FUZZ_SECONDS ?= 1200
FUZZ_PHASES ?= examples,fuzzing,stateful
fuzz: $(VENV)/.installed
	$(BIN)/python -m tests.service.fuzzing --seconds $(FUZZ_SECONDS) --phases $(FUZZ_PHASES) --report-dir fuzz-report

## test-browser: only the real-browser tests (Chromium at /usr/bin/chromium; .ci/run installs it)
test-browser: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/browser

## screenshots: run the browser tests on SQLite, writing their screenshots to docs/screenshots
screenshots: $(VENV)/.installed
	SCREENSHOTS=1 TEST_DATABASES=sqlite $(BIN)/python -m pytest -q tests/browser

## i18n: re-extract each catalogue's messages, merge them into its zh_Hans .po (translate the new ones), compile
## (a package with its own babel.cfg, as the mail's, extracts with it)
CATALOGUES := service/pages service/mail portal console
i18n: $(VENV)/.installed
	@for d in $(CATALOGUES); do \
	  cfg=babel.cfg; [ -f $$d/babel.cfg ] && cfg=$$d/babel.cfg; \
	  $(BIN)/pybabel -q extract -F $$cfg --no-location --omit-header -o $$d/translations/messages.pot $$d && \
	  $(BIN)/pybabel -q update --ignore-obsolete --no-fuzzy-matching --ignore-pot-creation-date -i $$d/translations/messages.pot -d $$d/translations -l zh_Hans && \
	  $(BIN)/pybabel -q compile --statistics -d $$d/translations || exit 1; \
	done

lint: $(VENV)/.installed
	$(BIN)/ruff check .

## bench: performance figures as ratios to baselines measured in the same run (needs PostgreSQL, wrk)
bench: $(VENV)/.installed
	$(BIN)/python bench/consent.py --repeat 3
	$(BIN)/python bench/record_path.py
	$(BIN)/python bench/portal.py --repeat 3
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/stores.py
	$(BIN)/python bench/store_subjects.py
	$(BIN)/python bench/incidents.py
	$(BIN)/python bench/retention.py
	$(BIN)/python bench/dsar.py
	$(BIN)/python bench/console.py --repeat 3
	$(BIN)/python bench/evidence.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
