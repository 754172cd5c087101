# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
SYSTEM_PACKAGES := redis-server pcscd vsmartcard-vpcd libpcsclite-dev swig
DEMO_ORG ?= DEMO0001

.PHONY: setup system-packages fhir-package run test demo bench clean

setup: system-packages $(VENV)/.installed fhir-package

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

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
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
	rm -rf $(VENV) var .pytest_cache .hypothesis *.egg-info
