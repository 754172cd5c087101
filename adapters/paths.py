"""Setting a value in a canonical-visit dict by its path (``a.b[].c``): shared by every
mapping engine (the HL7 v2 rules and the adapter SDK's field specs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def set_path(root: dict[str, Any], path: str, value: Any,
             beside: dict[str, Any] | None = None) -> str:
    """Set ``value`` at ``path``; ``[]`` appends a new item. ``beside``: more keys set next to
    a plain last key (e.g. a card's ``type`` beside its ``value``). Returns the concrete path
    (``cards[2].value``)."""
    if "." not in path and "[" not in path:  # the common case: a plain key
        root[path] = value
        if beside:
            root.update(beside)
        return path
    node: Any = root
    concrete: list[str] = []
    parts = path.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part.endswith("[]"):
            name = part[:-2]
            items = node.setdefault(name, [])
            concrete.append(f"{name}[{len(items)}]")
            if last:
                items.append(value)
                break
            items.append({})
            node = items[-1]
        else:
            concrete.append(part)
            if last:
                node[part] = value
                if beside:
                    node.update(beside)
                break
            node = node.setdefault(part, {})
    return ".".join(concrete)


def setter(path: str) -> Callable[[dict[str, Any], Any], None]:
    """``set_path`` for one path, parsed once: ``setter("patient.cards[]")(root, value)``
    sets exactly what ``set_path(root, "patient.cards[]", value)`` does, without working
    out the concrete path."""
    if "." not in path and "[" not in path:
        def set_key(root: dict[str, Any], value: Any) -> None:
            root[path] = value
        return set_key
    steps = [(part[:-2], True) if part.endswith("[]") else (part, False)
             for part in path.split(".")]
    last, append_last = steps.pop()
    walk = tuple(steps)
    if not append_last and len(walk) == 1 and not walk[0][1]:
        parent = walk[0][0]

        def set_child(root: dict[str, Any], value: Any) -> None:  # "patient.name"
            root.setdefault(parent, {})[last] = value
        return set_child

    def set_nested(root: dict[str, Any], value: Any) -> None:
        node: Any = root
        for name, append in walk:
            if append:
                items = node.setdefault(name, [])
                items.append({})
                node = items[-1]
            else:
                node = node.setdefault(name, {})
        if append_last:
            node.setdefault(last, []).append(value)
        else:
            node[last] = value
    return set_nested
