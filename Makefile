# Sales Platform — local development, tests and images.
# `make up` starts everything; `make test` runs every test suite.
# The orchestration lives in deploy/up.sh; this file only names the steps.

SHELL       := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.requirements.stamp
# The console's charting library (ECharts), pinned with its sha512 in gateway/console/vendor.json.
CONSOLE_VENDOR := gateway/console/vendor/.fetched.json

SERVICES    := customer order inventory billing aftersales
PROCESSES   := $(SERVICES) gateway
RUN_TARGETS := $(addprefix run-,$(PROCESSES))

# Every process and test imports `shared` (repo root) and its own package.
empty       :=
space       := $(empty) $(empty)
PYTHONPATH  := $(subst $(space),:,$(CURDIR) $(addprefix $(CURDIR)/services/,$(SERVICES)) $(CURDIR)/gateway)
export PYTHONPATH

# Test roots that exist in this checkout (git keeps no empty folder).
TEST_ROOTS  := $(wildcard tests services gateway shared)
TESTS       ?= $(TEST_ROOTS)
TEST_ARGS   ?=

IMAGE_PREFIX ?= sales-platform
IMAGE_TAG    ?= latest

.PHONY: help venv up test migrate down clean images bench $(RUN_TARGETS)

help:
	@echo "make up            start PostgreSQL/RabbitMQ if stopped, migrate, start all six processes"
	@echo "make test          run every test suite (TESTS=path TEST_ARGS='-k foo -x' to narrow)"
	@echo "make bench         baselines + orders + reads + scale, one run (BENCH_ARGS='--scale 10000'); docs/PERFORMANCE.md"
	@echo "make venv          create/refresh .venv from requirements.txt + constraints.txt, and the console's ECharts"
	@echo "make test-security the security and concurrency suites (docs/SECURITY.md)"
	@echo "make migrate       create and migrate the six databases"
	@echo "make verify        check the running platform's books across services (invariants)"
	@echo "make test-faults   the fault suite: kills, restarts, duplicates, replicas (under 20 min)"
	@echo "make run-<name>    run one process alone: $(PROCESSES)"
	@echo "make down          how to stop (Ctrl-C)"
	@echo "make images        build the container images (needs a Docker engine)"
	@echo "make clean         remove .venv and caches (keeps .env and the databases)"

# The virtualenv is rebuilt only when the pins change.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $@

# The console's third-party browser files: fetched with npm once, checked, kept out of git.
$(CONSOLE_VENDOR): gateway/console/vendor.json gateway/console/fetch_vendor.py
	$(PYTHON) gateway/console/fetch_vendor.py

venv: $(STAMP) $(CONSOLE_VENDOR)

up: venv
	bash deploy/up.sh up

migrate: venv
	bash deploy/up.sh migrate

$(RUN_TARGETS): run-%: venv
	bash deploy/up.sh run $*

test: venv
	$(BIN)/nameko test $(TESTS) $(TEST_ARGS)

# The benchmark (docs/PERFORMANCE.md): its own databases, vhost and ports, no demo data; prints
# the table with PASS/MISS against the baselines of the same run and writes bench-results/latest.json.
BENCH_ARGS ?=
bench: venv
	bash deploy/up.sh infra
	$(BIN)/python -W ignore -m bench $(BENCH_ARGS)

# `make up` runs honcho in the foreground: Ctrl-C stops all six processes and
# nothing is left behind, so there is nothing for `down` to do. PostgreSQL and
# RabbitMQ are machine services shared with other work and are left running.
down:
	@echo "Nothing to stop: 'make up' runs in the foreground; press Ctrl-C in its terminal."
	@echo "PostgreSQL and RabbitMQ are left running on purpose."

images: $(CONSOLE_VENDOR)
	docker build -f deploy/docker/Dockerfile --target runtime -t $(IMAGE_PREFIX)/runtime:$(IMAGE_TAG) .
	for p in $(PROCESSES); do \
	  dir=services/$$p; [ $$p = gateway ] && dir=gateway; \
	  docker build -f $$dir/Dockerfile \
	    --build-arg BASE_IMAGE=$(IMAGE_PREFIX)/runtime:$(IMAGE_TAG) \
	    -t $(IMAGE_PREFIX)/$$p:$(IMAGE_TAG) . || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .coverage htmlcov
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -not -path './.git/*' -exec rm -rf {} +

# Deploy checks only (Dockerfiles, compose, Kubernetes, Prometheus rules, Grafana dashboard);
# `make test` runs them too. docs/DEPLOY.md, "What CI checks".
.PHONY: validate-deploy
validate-deploy: venv
	$(BIN)/nameko test tests/deploy $(TEST_ARGS)

# One process alone (issue 13): its own unit and integration tests with only PostgreSQL and
# RabbitMQ; PYTHONPATH holds the kit and that process's folder and nothing of the others, so an
# import of another service fails here (tests/architecture/test_autonomy.py checks it too).
TEST_ALONE := $(addprefix test-,$(PROCESSES))
home = $(if $(filter gateway,$(1)),gateway,services/$(1))
.PHONY: $(TEST_ALONE) test-faults verify rpc-contracts check-rpc-contracts
$(TEST_ALONE): test-%: venv
	PYTHONPATH=$(CURDIR):$(CURDIR)/$(call home,$*) $(BIN)/nameko test $(call home,$*)/tests $(TEST_ARGS)

# The security and concurrency suites alone (issue 9; `make test` runs them too): docs/SECURITY.md.
.PHONY: test-security
test-security: venv
	$(BIN)/nameko test tests/security tests/concurrency $(TEST_ARGS)

# The fault suite: real processes, slow (issue 9 owns the suite; the rolling upgrade lives in it).
test-faults: venv
	RUN_FAULTS=1 $(BIN)/nameko test tests/faults $(TEST_ARGS)

# The invariant checker against the running platform (`make up`; AMQP_URI from the environment or
# .env): every service's books over RPC, checked across services (docs/RELIABILITY.md).
verify: venv
	$(BIN)/python -m tests.invariants $(VERIFY_ARGS)

# RPC contracts (services/<svc>/contracts/rpc/*.json) from each service's signatures and
# marshmallow schemas: write them (review the diff, commit it), or only check (`make test` does).
rpc-contracts: venv
	$(BIN)/python -W ignore -m shared.testing.rpc_contracts $(SERVICE)
check-rpc-contracts: venv
	$(BIN)/python -W ignore -m shared.testing.rpc_contracts --check $(SERVICE)
