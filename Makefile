# The two set-up commands are `make demo` and `make test`; both create .venv and fetch jars on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench bench-day lint jars venv clean stack-down notebooks superset-venv airflow-venv

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dbt,notebooks]'
	touch $@

venv: $(STAMP)

# A tool in a virtualenv of its own, beside ours: $(call side_venv,DIR,PACKAGES)
define side_venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/pip install --quiet --upgrade pip
	$(1)/bin/pip install --quiet $(2)
	touch $@
endef

# Apache Superset in its own virtualenv: its pins (pandas, pyarrow) clash with ours. rich: its CLI needs it;
# flask-caching 2.5 breaks `db upgrade`; cachetools: registering a database fails without it (a misleading 422).
SUPERSET_VENV  := .venv-superset
SUPERSET_VERSION := $(shell sed -n '/^\[superset\]/,/^\[/s/^version = "\(.*\)".*/\1/p' infra/local/versions.toml)
SUPERSET_STAMP := $(SUPERSET_VENV)/.installed-$(SUPERSET_VERSION)
$(SUPERSET_STAMP):
	$(call side_venv,$(SUPERSET_VENV),'apache-superset==$(SUPERSET_VERSION)' rich 'flask-caching==2.3.1' \
		cachetools 'duckdb-engine==0.17.0' gunicorn)

superset-venv: $(SUPERSET_STAMP)

# Apache Airflow in its own virtualenv, only to check that infra/airflow's DAGs load (tests/infra/test_airflow_dags.py)
AIRFLOW_VENV  := .venv-airflow
AIRFLOW_VERSION := $(shell sed -n '/^\[airflow\]/,/^\[/s/^version = "\(.*\)".*/\1/p' infra/local/versions.toml)
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed-$(AIRFLOW_VERSION)
$(AIRFLOW_STAMP):
	$(call side_venv,$(AIRFLOW_VENV),'apache-airflow==$(AIRFLOW_VERSION)')

airflow-venv: $(AIRFLOW_STAMP)

jars: $(STAMP)
	$(BIN)/meterlake stack fetch

demo: jars $(SUPERSET_STAMP)
	DO_NOT_TRACK=1 $(BIN)/meterlake demo $(DEMO_ARGS)

# stops what `make demo` started: Superset, then the local stack (their data stays under state/)
.PHONY: demo-down
demo-down: $(STAMP)
	-$(BIN)/meterlake dashboards down
	$(BIN)/meterlake stack down

test: jars $(SUPERSET_STAMP) $(AIRFLOW_STAMP)
	DO_NOT_TRACK=1 $(BIN)/pytest $(PYTEST_ARGS)

# the edit loop: everything but the slow and multi-node tests (CI runs `make test`, the whole suite)
test-fast: jars
	DO_NOT_TRACK=1 $(BIN)/pytest -m "not slow and not multinode" $(PYTEST_ARGS)

bench: jars
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# one UK-supplier day end to end (benchmarks/bench_day.py): make bench-day METERS=1000000
bench-day: jars
	$(BIN)/python -m benchmarks day $(if $(METERS),--meters $(METERS)) $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check meterlake infra jobs streaming tests benchmarks reports

# the notebooks executed on the configured lake and warehouse (`meterlake models build` first), as HTML with plots
notebooks: $(STAMP)
	mkdir -p build/notebooks
	for nb in notebooks/*.ipynb; do \
	  $(BIN)/papermill --no-progress-bar "$$nb" "build/notebooks/$$(basename $$nb)" && \
	  $(BIN)/jupyter nbconvert --to html --output-dir build/notebooks "build/notebooks/$$(basename $$nb)" || exit 1; \
	done

stack-down: $(STAMP)
	$(BIN)/meterlake stack down

clean:
	-$(BIN)/meterlake stack down
	-$(BIN)/meterlake dashboards down
	rm -rf $(VENV) $(SUPERSET_VENV) $(AIRFLOW_VENV) state lake build *.egg-info
