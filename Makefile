# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
SYSTEM_PACKAGES := redis-server pcscd vsmartcard-vpcd libpcsclite-dev swig python3-venv python3-dev
# The interpreter the .venv is made with: the distribution's own python3 when it is 3.11 or
# newer — Debian and Ubuntu build it with profile-guided optimisation and link-time
# optimisation, so the same code runs 13% fewer instructions per HL7 v2 message
# (bench/instructions.py) than on a plain source build such as pyenv's default —, else python3
# on PATH. `make setup PYTHON=/path/to/python3.x` picks another; the .venv follows it.
PYTHON ?= $(shell for p in /usr/bin/python3 python3; do \
  $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$p; break; }; done)
DEMO_ORG ?= DEMO0001

.PHONY: setup system-packages interpreter compile fhir-package run test demo bench clean

setup: system-packages interpreter $(VENV)/.installed compile fhir-package

# A .venv made with another interpreter is made again, and the modules compiled again for it.
interpreter:
	@test -n "$(PYTHON)" || { echo "no Python 3.11 or newer found: make setup PYTHON=/path/to/python3.11"; exit 1; }
	@if [ -x $(PY) ] && [ "$$(realpath "$$($(PY) -c 'import sys; print(sys._base_executable)')")" != "$$(realpath "$$(command -v $(PYTHON))")" ]; then \
	  echo "the .venv was made with another Python: making it again with $(PYTHON)"; \
	  rm -rf $(VENV); find gateway conformance adapters terminology \( -name '*.so' -o -name '*.c' \) -delete; \
	fi

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
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
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
