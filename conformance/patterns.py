"""Fixed and pattern values, and the values slicing discriminators read, as closures built
once per element."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def values_at(value: Any, path: str) -> list[Any]:
    """Values at a simple dotted path (arrays flattened); ``$this`` is the value itself."""
    items = [value]
    if path in ("$this", ""):
        return items
    for part in path.split("."):
        nxt = []
        for it in items:
            if type(it) is dict and part in it:
                v = it[part]
                nxt.extend(v if type(v) is list else (v,))
        items = nxt
    return items


def pattern_matcher(pattern: Any) -> Callable[[Any], bool]:
    """A test for FHIR pattern semantics — every part of the pattern is present in the
    value (arrays: each pattern item matches some value item) — unfolded into closures."""
    if type(pattern) is dict:
        parts = tuple((k, pattern_matcher(v)) for k, v in pattern.items())

        def match_dict(value):
            if type(value) is not dict:
                return False
            for k, m in parts:
                if k not in value or not m(value[k]):
                    return False
            return True
        return match_dict
    if type(pattern) is list:
        items = tuple(pattern_matcher(p) for p in pattern)

        def match_list(value):
            if type(value) is not list:
                return False
            for m in items:
                for v in value:
                    if m(v):
                        break
                else:
                    return False
            return True
        return match_list
    return lambda value: value == pattern


def getter(path: str) -> Callable[[Any], list]:
    if path in ("$this", ""):
        return lambda v: [v]
    if "." not in path:
        def one(v):
            if type(v) is dict and path in v:
                x = v[path]
                return x if type(x) is list else [x]
            return []
        return one
    return lambda v: values_at(v, path)
