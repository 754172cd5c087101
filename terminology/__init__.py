from gateway.compiled import install as _guard_compiled

_guard_compiled()  # a compiled module older than its source is not used (gateway/compiled.py)
