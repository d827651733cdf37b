# The two commands a new user needs (each makes its own virtual environment in .venv):
#   make demo   install lacewing and run the main job: `lacewing demo` (root, Linux), a meshed
#               demo app on this machine with live metrics until Ctrl-C
#               (make demo DEMO_ARGS="--duration 30s" runs unattended)
#   make test   install lacewing with its test tools and run every check and test
# And: make image   the container image for linux/amd64 and linux/arm64 as docker-archive
#                   tarballs under build/image/ (root; Debian packages, no registry: see
#                   image/build.sh); `make test` then also runs tests/image against them
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint unit bench fuzz faults clean venv image image-test image-clean

# The proxy's hot path (lacewing.proxy.build.COMPILED) is compiled with mypyc by the install
# (setup.py; about a minute; needs gcc and Python's headers, else one line says so;
# LACEWING_BUILD=pure make venv installs pure Python). The editable install builds the
# extensions next to their sources, where they shadow the .py: so the venv is rebuilt when one
# of those sources changes, and stale extensions are removed first.
HOT_SRC = $(addprefix src/,$(addsuffix .py,$(subst .,/,$(shell \
	sed -n 's/^    "\(lacewing\.[a-z0-9_.]*\)",$$/\1/p' src/lacewing/proxy/build.py))))

$(BIN)/lacewing: pyproject.toml setup.py src/lacewing/proxy/build.py $(HOT_SRC)
	@command -v $${CC:-cc} >/dev/null || [ "$${LACEWING_BUILD:-}" = pure ] || \
		{ echo "no C compiler to compile the proxy's hot path: apt-get install gcc python3-dev, or LACEWING_BUILD=pure make venv"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	find src -name '*.so' -delete
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/lacewing

venv: $(BIN)/lacewing

DEMO_ARGS ?=

demo: venv
	$(BIN)/lacewing demo $(DEMO_ARGS)

lint: venv
	$(BIN)/ruff check src tests bench image
	$(BIN)/ruff format --check src tests bench image
	$(BIN)/mypy
	$(BIN)/mypy image/archive.py
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q

image:
	PYTHON=$(PYTHON) image/build.sh

image-test: venv
	$(BIN)/pytest -q tests/image

# The tarballs, and the cached Debian bases in buildah's storage.
image-clean:
	rm -rf build/image
	buildah rmi $$(buildah images -q --filter reference=localhost/lacewing-image-base) 2>/dev/null || true

bench: venv
	$(BIN)/python bench/proxy_bench.py

# The fuzzers of tests/unit/fuzz with many more examples than `make test` runs, then each of
# them coverage-guided by atheris for FUZZ_SECONDS (about 15 minutes in all with the default).
FUZZ_SECONDS ?= 30
fuzz: venv
	LACEWING_FUZZ=long $(BIN)/pytest -q tests/unit/fuzz tests/unit/proxy/identity/test_clienthello.py
	$(BIN)/python -m tests.unit.fuzz.coverage_guided --seconds $(FUZZ_SECONDS)

# Every fault of tests/faults/catalogue.py on a local cluster under counted load (root, a few
# minutes); writes tests/results/faults-<date>.md. `make test` runs the short ones.
faults: venv
	LACEWING_FAULTS=full $(BIN)/pytest -q -s tests/integration/faults

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
