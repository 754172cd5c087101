"""A snapshot's elements as a tree: children by path, slices beside the element they slice."""

from __future__ import annotations


class Node:
    __slots__ = ("el", "children", "slices")

    def __init__(self, el: dict):
        self.el = el
        self.children: list[Node] = []
        self.slices: list[Node] = []

    @property
    def name(self) -> str:
        return self.el["path"].rsplit(".", 1)[-1]


def tree(elements: list[dict]) -> Node:
    """The element tree of a snapshot (slices hang off the element they slice)."""
    root = Node(elements[0])
    by_id = {elements[0]["id"]: root}
    for el in elements[1:]:
        eid = el["id"]
        node = Node(el)
        by_id[eid] = node
        parent_id, _, last = eid.rpartition(".")
        if ":" in last and last.split(":", 1)[0] == el["path"].rsplit(".", 1)[-1]:
            sliced = by_id.get(f"{parent_id}.{last.split(':', 1)[0]}")
            if sliced is not None and "slice" in el:
                sliced.slices.append(node)
                continue
        parent = by_id.get(parent_id)
        if parent is not None:
            parent.children.append(node)
    return root


def find(root: Node, path: str) -> Node | None:
    """contentReference target: ``#Questionnaire.item`` → that node."""
    parts = path.lstrip("#").split(".")[1:]
    node = root
    for p in parts:
        node = next((c for c in node.children if c.name == p), None)
        if node is None:
            return None
    return node
