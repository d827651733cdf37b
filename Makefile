# The two commands a new user needs (each makes its own virtual environment in .venv):
#   make demo   install lacewing and run the main job: `lacewing demo` (root, Linux), a meshed
#               demo app on this machine with live metrics until Ctrl-C
#               (make demo DEMO_ARGS="--duration 30s" runs unattended)
#   make test   install lacewing with its test tools and run every check and test
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint unit bench fuzz clean venv

$(BIN)/lacewing: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/lacewing

venv: $(BIN)/lacewing

DEMO_ARGS ?=

demo: venv
	$(BIN)/lacewing demo $(DEMO_ARGS)

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q

bench: venv
	$(BIN)/python bench/proxy_bench.py

# The fuzzers of tests/unit/fuzz with many more examples than `make test` runs (minutes).
fuzz: venv
	LACEWING_FUZZ=long $(BIN)/pytest -q tests/unit/fuzz tests/unit/proxy/identity/test_clienthello.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
