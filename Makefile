# Single entry point. Users need two commands: `make demo` and `make test`.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean k8s-testenv

setup: $(STAMP)
	@bash scripts/fetch_jars.sh
	@bash scripts/install-chromium.sh

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/mmon run --config examples/iris/monitor.yaml --output out/demo
	$(VENV)/bin/mmon report out/demo -o out/demo/report.html

test: setup
	$(VPY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/mmon bench --profile thesis --out bench-out/thesis

clean:
	rm -rf $(VENV) .cache out bench-out

# Build kube-apiserver/kube-controller-manager from source and install etcd for the API-server tests ahead of
# time (cold: ~15-25 min on 2 cores; cached in ~/.cache/mmon/k8s). `make test` does the same when they are
# missing; MMON_K8S_BUILD=0 makes it skip those tests instead.
k8s-testenv: setup
	bash scripts/k8s-testenv.sh all
