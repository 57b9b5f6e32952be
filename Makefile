# levredis — every target sets up what it needs (venv, dependencies, redis-server).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test test-pythons lint stress bench docs package-check clean

$(STAMP): pyproject.toml setup.py src/levredis/_speedups.c
	@bash scripts/install-redis.sh
	@bash scripts/install-compiler.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench,docs]'
	@touch $(STAMP)

demo: $(STAMP)
	@bash scripts/demo.sh $(BIN)/python

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy --strict src examples tests

test: lint
	LEVREDIS_BENCH_PEERS=all $(BIN)/python -m pytest -q

# The unit and integration tests on each other supported Python (3.11-3.13).
test-pythons: $(STAMP)
	bash scripts/test-other-pythons.sh $(BIN)/python

stress: $(STAMP)
	mkdir -p docs/stress
	LEVREDIS_STRESS=1 LEVREDIS_FIGURES=docs/stress/latest.json $(BIN)/python -m pytest -q \
	  -p no:randomly tests/unit/test_fuzz.py tests/unit/test_resp3.py tests/unit/test_routing_fuzz.py tests/integration/test_storm.py \
	  tests/integration/test_bounds.py tests/integration/test_blocking.py tests/integration/test_flow_control.py \
	  tests/integration/test_fault_matrix.py tests/integration/test_cache_freshness.py tests/cluster/test_chaos.py tests/soak
	$(BIN)/python -m bench.bounds --json docs/stress/bounds.json
	$(BIN)/python -m bench.cluster_chaos --client both --seconds 120 --json docs/stress/cluster_chaos.json
	$(BIN)/python -m bench.freshness --clients all --seconds 60 --json docs/stress/cache_freshness.json

bench: $(STAMP)
	$(BIN)/python -m bench.run --rounds 3 --json docs/bench/latest.json --text docs/bench/latest.txt
	$(BIN)/python -m bench.cluster --rounds 3 > docs/bench/cluster.txt
	cat docs/bench/cluster.txt
	$(BIN)/python -m bench.caching --rounds 5 --pin --clients "levredis cache,levredis,redis-py+hiredis" --json docs/bench/w7-pinned.json > docs/bench/w7.txt
	$(BIN)/python -m bench.caching --rounds 3 --json docs/bench/w7.json >> docs/bench/w7.txt
	cat docs/bench/w7.txt
	$(BIN)/python -m bench.against_c --rounds 5 --json docs/bench/against_c.json > docs/bench/against_c.txt
	$(BIN)/python -m bench.importtime >> docs/bench/against_c.txt
	cat docs/bench/against_c.txt
	$(BIN)/python -m bench.profile --rounds 3 --json docs/bench/profile.json > docs/bench/profile.txt
	cat docs/bench/profile.txt
	$(BIN)/python -m bench.chart docs/bench/latest.json docs/bench/against_c.json docs/img/ratios.png

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

package-check: $(STAMP)
	bash scripts/check-package.sh $(BIN)/python

clean:
	rm -rf $(VENV) .venv-3.* build dist site .pytest_cache .mypy_cache .ruff_cache .hypothesis
