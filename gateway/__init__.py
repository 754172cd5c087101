"""The gateway service: API, MLLP listener, pipeline stages, identity, delivery, CLI."""

from gateway.compiled import install as _guard_compiled

_guard_compiled()  # a compiled module older than its source is not used (gateway/compiled.py)
