# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
SYSTEM_PACKAGES := redis-server pcscd vsmartcard-vpcd libpcsclite-dev swig
DEMO_ORG ?= DEMO0001

.PHONY: setup system-packages compile fhir-package run test demo bench clean

setup: system-packages $(VENV)/.installed compile fhir-package

# The hot-path modules compiled with Cython, in place (setup.py lists them); only what
# changed since is compiled again. Without a C compiler the gateway runs as pure Python.
compile: $(VENV)/.installed
	@$(PY) setup.py -q build_ext --inplace 2>&1 | grep -v "^$$" | grep -iv "warning" || true
	@test -n "$$(find gateway -name '*.so' -print -quit)" || echo "note: nothing compiled; the gateway runs as pure Python (slower)"

# The full FHIR R4 package (definitions + official examples) into .cache/fhir; idempotent.
# The validator runs without it (conformance/core/ is vendored); the examples test uses it.
fhir-package: $(VENV)/.installed
	@$(PY) -m conformance.corepkg >/dev/null || echo "note: the FHIR package was not fetched; the validator runs on its vendored subset, only the official-examples test needs it"

# Missing system packages are installed with apt-get when root; otherwise the exact command is printed.
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "run: sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 'setuptools>=77' 'Cython>=3.0'
	YIKATONG_COMPILE=0 $(PY) -m pip install -q -e '.[test]'
	touch $@

run: setup
	$(VENV)/bin/gateway serve --with-peers --demo-org $(DEMO_ORG) --mllp-port 2575

test: setup
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/gateway demo --visits 500

bench: setup
	$(PY) bench/run.py
	$(PY) bench/hl7v2.py
	$(PY) bench/empi.py
	$(PY) bench/terminology.py
	$(PY) bench/validator.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis *.egg-info build
	find gateway conformance adapters terminology \( -name '*.so' -o -name '*.c' \) -delete
