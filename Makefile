# The two set-up commands are `make demo` and `make test`; both create .venv and fetch jars on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench lint jars venv clean stack-down notebooks

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dbt,notebooks]'
	touch $@

venv: $(STAMP)

jars: $(STAMP)
	$(BIN)/meterlake stack fetch

demo: jars
	$(BIN)/meterlake demo

test: jars
	DO_NOT_TRACK=1 $(BIN)/pytest $(PYTEST_ARGS)

# the edit loop: everything but the slow and multi-node tests (CI runs `make test`, the whole suite)
test-fast: jars
	DO_NOT_TRACK=1 $(BIN)/pytest -m "not slow and not multinode" $(PYTEST_ARGS)

bench: jars
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check meterlake infra jobs streaming tests benchmarks

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
	rm -rf $(VENV) state lake build *.egg-info
