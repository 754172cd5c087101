"""Vendor input as records the field specs read from, each naming positions in the
vendor's own terms, and each remembering what was read (the rest is ``unread``).

    XML    /his:Visit/his:Patient/his:IdNo (line 7)     XPath relative to the record
    JSON   /patient/name                                dotted path relative to the record
    CSV    fees.csv row 12 column amount                column name (``table.column`` across tables)
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.errors import GatewayError
from gateway.errors import issue as _issue
from gateway.errors import outcome as _outcome


def _unreadable(text: str, where: str | None) -> GatewayError:
    return GatewayError(_outcome([_issue(text, where, code="structure", error_code="2000")]),
                        status=400)


# -- XML -------------------------------------------------------------------------------

class XmlDocument:
    """One XML document (any declared encoding, e.g. GBK), with the dialect's prefixes."""

    def __init__(self, raw: bytes, namespaces: dict[str, str]):
        parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True,
                                 huge_tree=False)
        try:
            self.root = etree.fromstring(raw, parser)
        except etree.XMLSyntaxError as exc:
            line, col = exc.position if exc.position else (0, 0)
            raise _unreadable(f"malformed XML: {exc.msg}",
                              f"line {line}, column {col}") from None
        except ValueError as exc:
            raise _unreadable(f"malformed XML: {exc}", None) from None
        self.ns = namespaces
        self._prefix = {uri: p for p, uri in namespaces.items()}
        self.read: set[str] = set()

    def name(self, el: Any) -> str:
        q = etree.QName(el)
        prefix = self._prefix.get(q.namespace)
        return f"{prefix}:{q.localname}" if prefix else q.localname

    def path(self, el: Any) -> str:
        parts = []
        while el is not None:
            step = self.name(el)
            parent = el.getparent()
            if parent is not None:
                same = [s for s in parent if s.tag == el.tag]
                if len(same) > 1:
                    step += f"[{same.index(el) + 1}]"
            parts.append(step)
            el = parent
        return "/" + "/".join(reversed(parts))

    def record(self) -> XmlRecord:
        return XmlRecord(self, self.root)

    def present(self) -> list[str]:
        """Every non-empty leaf element and attribute, by path."""
        out = []
        for el in self.root.iter(etree.Element):
            p = self.path(el)
            for attr in el.attrib:
                out.append(f"{p}/@{etree.QName(attr).localname}")
            if len(el) == 0 and (el.text or "").strip():
                out.append(p)
        return out

    def unread(self) -> tuple[str, ...]:
        return tuple(p for p in self.present() if p not in self.read)


class XmlRecord:
    def __init__(self, doc: XmlDocument, el: Any):
        self.doc, self.el = doc, el

    def where(self) -> str:
        return f"{self.doc.path(self.el)} (line {self.el.sourceline})"

    def get(self, source: str) -> tuple[str | None, str]:
        try:
            found = self.el.xpath(source, namespaces=self.doc.ns)
        except etree.XPathError as exc:
            raise ValueError(f"bad XPath {source!r} in the mapping: {exc}") from None
        if not found:
            return None, f"{self.doc.path(self.el)}/{source}"
        hit = found[0]
        if isinstance(hit, str):  # an attribute or text() result
            parent = hit.getparent()
            if getattr(hit, "is_attribute", False):
                path = f"{self.doc.path(parent)}/@{etree.QName(hit.attrname).localname}"
            else:
                path = self.doc.path(parent)
            self.doc.read.add(path)
            return str(hit), f"{path} (line {parent.sourceline})"
        path = self.doc.path(hit)
        self.doc.read.add(path)
        return "".join(hit.itertext()), f"{path} (line {hit.sourceline})"

    def items(self, each: str) -> list[XmlRecord]:
        return [XmlRecord(self.doc, el) for el in self.el.xpath(each, namespaces=self.doc.ns)
                if isinstance(el, etree._Element)]


# -- JSON ------------------------------------------------------------------------------

class JsonDocument:
    def __init__(self, raw: bytes):
        import orjson

        try:
            self.data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _unreadable(f"malformed JSON: {exc}", None) from None
        if not isinstance(self.data, dict):
            raise _unreadable("the document is not a JSON object", "/")
        self.read: set[str] = set()

    def record(self) -> JsonRecord:
        return JsonRecord(self, self.data, "")

    def present(self) -> list[str]:
        out: list[str] = []

        def walk(node: Any, path: str) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, f"{path}/{k}")
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, f"{path}/{i}")
            elif node not in (None, ""):
                out.append(path)
        walk(self.data, "")
        return out

    def unread(self) -> tuple[str, ...]:
        return tuple(p for p in self.present() if p not in self.read)


class JsonRecord:
    def __init__(self, doc: JsonDocument, node: Any, pointer: str):
        self.doc, self.node, self.pointer = doc, node, pointer

    def where(self) -> str:
        return self.pointer or "/"

    def _walk(self, source: str) -> tuple[Any, str]:
        node, pointer = self.node, self.pointer
        for part in source.split("."):
            pointer += f"/{part}"
            node = node.get(part) if isinstance(node, dict) else None
        return node, pointer

    def get(self, source: str) -> tuple[str | None, str]:
        node, pointer = self._walk(source)
        if node is None or isinstance(node, (dict, list)):
            return None, pointer
        self.doc.read.add(pointer)
        return (str(node).lower() if isinstance(node, bool) else str(node)), pointer

    def items(self, each: str) -> list[JsonRecord]:
        node, pointer = self._walk(each)
        if not isinstance(node, list):
            return []
        return [JsonRecord(self.doc, item, f"{pointer}/{i}") for i, item in enumerate(node)]


# -- CSV -------------------------------------------------------------------------------

class CsvRow:
    """One row of one table file; row numbers count the header as row 1 (as a spreadsheet
    shows them)."""

    def __init__(self, table: str, number: int, values: dict[str, str], read: set[str]):
        self.table, self.number, self.values, self.read = table, number, values, read

    def at(self, column: str) -> str:
        return f"{self.table} row {self.number} column {column}"

    def where(self) -> str:
        return f"{self.table} row {self.number}"

    def get(self, source: str) -> tuple[str | None, str]:
        where = self.at(source)
        if source not in self.values:
            return None, where
        self.read.add(where)
        return self.values[source], where

    def items(self, each: str) -> list[CsvRow]:
        return []

    def present(self) -> list[str]:
        return [self.at(c) for c, v in self.values.items() if v.strip()]


class Joined:
    """Rows of several tables joined into one record: ``table.column`` reads the row of that
    table; ``items(table)`` gives the child rows of a repeated part."""

    def __init__(self, main: CsvRow, one: dict[str, CsvRow | None],
                 many: dict[str, list[CsvRow]]):
        self.main, self.one, self.many = main, one, many

    def where(self) -> str:
        return self.main.where()

    def get(self, source: str) -> tuple[str | None, str]:
        table, _, column = source.rpartition(".")
        if not table:
            return self.main.get(column)
        row = self.main if self.main.table.removesuffix(".csv") == table else self.one.get(table)
        if row is None:
            return None, f"{table}.csv column {column}"
        return row.get(column)

    def items(self, each: str) -> list[CsvRow]:
        return self.many.get(each, [])
