# Tanys: the few verbs people use. `make run` sets up and starts the embedded platform;
# `make test` runs the whole suite (against PostgreSQL and Redis when DATABASE_URL and
# CELERY_BROKER_URL are set, as .ci/run does).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run setup test lint bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/python manage.py compilemessages --ignore=.venv -v 0
	$(BIN)/python manage.py migrate --no-input -v 0
	$(BIN)/python manage.py collectstatic --no-input -v 0
	$(BIN)/python manage.py setup_demo

run: setup
	$(BIN)/python manage.py runserver 127.0.0.1:8000

test: $(STAMP)
	$(BIN)/python manage.py compilemessages --ignore=.venv -v 0
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy config surveys analytics audit odk collect

# Benchmarks run on PostgreSQL (DATABASE_URL, default: the local server) with real Redis.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/tanys_bench
bench: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(BENCH_DATABASE_URL)} $(BIN)/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* media staticfiles
