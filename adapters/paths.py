"""Setting a value in a canonical-visit dict by its path (``a.b[].c``): shared by every
mapping engine (the HL7 v2 rules and the adapter SDK's field specs)."""

from __future__ import annotations

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
