# The two commands a new user needs: `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8080

CLIENTS := $(basename $(notdir $(wildcard tests/clients/*.txt)))
CLIENT_VENVS := $(CLIENTS:%=.cache/clients/%/.installed)

.PHONY: serve test clients image-layers coverage bench bench-gpu lint lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements-export.txt requirements-aws.txt $(VENV)/.runtime
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

## serve: serve the bundled demo model (or $$MODEL_URI) on $$PORT with functions-framework (ASGI)
serve: $(VENV)/.runtime
	PORT=$(PORT) $(BIN)/functions-framework --target predict --source main.py --asgi --port $(PORT)

## test: install the test dependencies and the clients' venvs, and run the whole suite on
## $(TEST_WORKERS) pytest-xdist workers (a module's tests on one worker; the long fuzz runs
## spread and first: tests/conftest.py); TEST_WORKERS=0 runs it in this one process
TEST_WORKERS ?= 2
test: $(VENV)/.dev clients image-layers
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup \
	  --no-loadscope-reorder tests

## clients: a venv per heavy client the suite drives (tests/clients/NAME.txt) in
## .cache/clients/NAME, rebuilt only when its requirements file's content changes
clients: $(CLIENT_VENVS)

.cache/clients/%/.installed: tests/clients/%.txt
	@if cmp -s $< $@; then touch $@; else \
	  echo "client venv $*: installing $<" && rm -rf $(@D) && $(PYTHON) -m venv $(@D) && \
	  $(@D)/bin/pip install -q --disable-pip-version-check -r $< && cp $< $@; fi

## image-layers: the images' pip steps without Docker (deploy/Dockerfile's install layer in
## a venv, the GPU and Lambda images' resolutions), cached as Docker caches a layer
## (tests/deploy_fixtures/image_layers.py); a no-op when they are current
image-layers: $(VENV)/.dev
	$(BIN)/python -m tests.deploy_fixtures.image_layers

## coverage: the suite as make test runs it, under coverage.py (branches over functions/ and
## model_export/; xdist workers, servers, their forked workers and CLI subprocesses
## included: .coveragerc); the report is written even when a test fails (make then fails),
## in .cache/coverage/report.txt, its TOTAL line printed (docs/testing.md)
coverage: $(VENV)/.dev clients image-layers
	rm -rf .cache/coverage && mkdir -p .cache/coverage
	PYTHONPATH=$(CURDIR)/tests/coverage_site $(BIN)/python -m coverage run -m pytest -q \
	  -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder tests; \
	status=$$?; $(BIN)/python -m coverage combine -q && \
	$(BIN)/python -m coverage report --precision=2 > .cache/coverage/report.txt && \
	grep '^TOTAL' .cache/coverage/report.txt && exit $$status

## bench: run the benchmarks (numbers recorded in README.md); needs wrk (Debian package)
bench: $(VENV)/.dev
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m benchmarks

## bench-gpu: the batching benchmark on the CUDA provider (a GPU machine: NVIDIA driver,
## network to PyPI); swaps onnxruntime for requirements-gpu.txt in .venv, result in
## benchmarks/results/batching_bench_gpu.json and batching.png
bench-gpu: $(VENV)/.dev
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/pip uninstall -q -y onnxruntime && $(BIN)/pip install -q -r requirements-gpu.txt
	EXECUTION_PROVIDERS=gpu $(BIN)/python -m benchmarks.batching_bench

## lint: ruff over the code we own
lint: $(VENV)/.dev
	$(BIN)/ruff check main.py functions model_export benchmarks tests

## lock: re-pin requirements.txt (the full runtime closure) from requirements.in
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q -r requirements.in
	{ sed -n '1,4p' requirements.txt; .lock-venv/bin/pip freeze --exclude-editable; } > requirements.lock.tmp
	mv requirements.lock.tmp requirements.txt && rm -rf .lock-venv

clean:
	rm -rf $(VENV)
