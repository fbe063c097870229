# Single entry point. Users need two commands: `make demo` and `make test`.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast test-java bench clean k8s-testenv

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

# The whole suite: the Java unit tests (Maven), then every Python test (real Flink, Kafka, kube-apiserver).
test: setup test-java
	$(VPY) -m pytest $(PYTEST_ARGS)

# The Java functions' unit tests (jvm/udfs/src/test), Flink's operator test harnesses included.
test-java: setup
	mvn -q -B -ntp -f jvm/udfs/pom.xml test

# The tests that start no JVM, broker, S3 server or API server: seconds, for the edit-test loop.
test-fast: $(STAMP)
	$(VPY) -m pytest -m "not flink and not kafka and not k8s and not s3" $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/mmon bench --profile thesis --out bench-out/thesis

clean:
	rm -rf $(VENV) .cache out bench-out

# Build kube-apiserver/kube-controller-manager from source and install etcd for the API-server tests ahead of
# time (cold: ~15-25 min on 2 cores; cached in ~/.cache/mmon/k8s). `make test` does the same when they are
# missing; MMON_K8S_BUILD=0 makes it skip those tests instead.
k8s-testenv: setup
	bash scripts/k8s-testenv.sh all
