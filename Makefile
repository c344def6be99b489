# Quick start: `make demo` runs the app on the demo data; `make test` runs the whole test suite.
# Both create the virtual environment in .venv on first use (uv when available: about 10x faster).

VENV ?= .venv
PY := $(VENV)/bin/python
DB ?= workspace/demo.db
HOST ?= 127.0.0.1
PORT ?= 8501

.PHONY: demo test lint bench browser-deps proxy-deps postgres-deps

# Bytecode is compiled at install: every process of the test suite (its workers, the CLI and
# servers it starts) then imports pandas, scipy and streamlit from .pyc files, even where
# PYTHONDONTWRITEBYTECODE is set (without them each process spends seconds compiling).
$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv
	$(PY) -m uv pip install -q --compile-bytecode --python $(PY) -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	REVIEW_APP_DB=$(DB) $(VENV)/bin/review-app demo --host $(HOST) --port $(PORT) \
		$(if $(PUBLIC_URL),--public-url $(PUBLIC_URL))

browser-deps:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium is missing and cannot be installed here: browser tests will be skipped"; fi

# The reverse-proxy test runs the nginx configuration of docs/deploy.md in an nginx of its own,
# on free ports; it never uses the system service the package may start on a machine with an
# init system (in a container, policy-rc.d usually keeps it stopped).
proxy-deps:
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's nginx for the reverse-proxy test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; \
	else echo "nginx is missing and cannot be installed here: the reverse-proxy test will be skipped"; fi

# The tests that run on both backends start a throwaway PostgreSQL cluster of their own from
# these binaries (tests/postgres.py); the package's own server is never used.
postgres-deps:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's PostgreSQL server for the tests on both backends"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL is missing and cannot be installed here: its tests will be skipped"; fi

# Each test process runs its BLAS on one thread: the suite already keeps both cores busy with
# its processes, and a second BLAS thread spinning beside them only takes a core from another.
# The project's own bytecode is written once (PYTHONDONTWRITEBYTECODE, where a shell sets it, is
# lifted for the run): each test process, app server and command the suite starts would
# otherwise compile review_app and the tests again, half a second or more apiece.
test: $(VENV)/.installed browser-deps proxy-deps postgres-deps
	PYTHONDONTWRITEBYTECODE= OPENBLAS_NUM_THREADS=1 $(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: $(VENV)/.installed
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
