"""Invariants (``constraint.expression``): native Python for the ubiquitous ones, cached
compiled fhirpathpy for the rest.

Evaluating FHIRPath with fhirpathpy costs ~40 µs a call; ele-1 alone applies to every
element, so the core invariants that appear on the gateway's resources (ele-1, ext-1,
dom-2..dom-6, bdl-*, the resource-specific ones) and the project's own are written here
natively over the JSON. A native function answers True (holds), False (fails) or None
(undecided: let fhirpathpy decide). A native function is used only when the constraint's
expression is exactly the one it was written for, so a profile that changes an expression
gets fhirpathpy; ``tests/test_validator_invariants.py`` checks natives against fhirpathpy.

fhirpathpy verdicts are cached per (expression, node) when the expression does not look
outside its node (no ``%resource``, ``%rootResource``, ``resolve()``). ``htmlChecks()``
(txt-1, txt-2: the narrative's XHTML rules) is native: lxml reads the ``div``.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from datetime import datetime
from decimal import Decimal
from collections.abc import Callable
from typing import Any

import orjson

from gateway.identifiers import BASE

Native = Callable[[Any, Any], "bool | None"]
CARD_TYPE = f"{BASE}/CodeSystem/card-type"
_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
UCUM = "http://unitsofmeasure.org"
_TRACE = re.compile(r"\.trace\('[^']*'(?:,\s*[^()]*)?\)")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


# The natives read JSON objects with `in` and `[]`, and compare prefixes by slicing: a
# method call (`.get`, `.startswith`) costs several times as much from compiled code. A key
# that is not a string still raises as before (malformed: fhirpathpy decides).

def _starts(k: Any, prefix: str) -> bool:
    """``k.startswith(prefix)``."""
    if type(k) is str:
        return k[:len(prefix)] == prefix
    return k.startswith(prefix)


def _any_key_starts(n: dict, prefix: str) -> bool:
    for k in n:
        if _starts(k, prefix):
            return True
    return False


def _has_value_key(n: dict) -> bool:
    for k in n:
        if _starts(k, "value") or _starts(k, "_value"):  # `_valueString`: only extensions
            return True
    return False


def _codings(cc: Any) -> list:
    return cc.get("coding", ()) if type(cc) is dict else ()


def _has_coding(cc: Any, system: str, codes: tuple[str, ...]) -> bool:
    return any(c.get("system") == system and c.get("code") in codes for c in _codings(cc))


def _contained(n: dict) -> list:
    return [c for c in n.get("contained", ()) if type(c) is dict]


def _strings(node: Any, out: set) -> None:
    if type(node) is dict:
        for v in node.values():
            _strings(v, out)
    elif type(node) is list:
        for v in node:
            _strings(v, out)
    elif type(node) is str and node.startswith("#"):
        out.add(node)


def _dom3(n: dict, ctx: Any) -> bool:
    contained = _contained(n)
    if not contained:
        return True
    refs: set[str] = set()
    _strings(n, refs)
    if "#" in refs:
        return True
    return all("#" + str(c.get("id")) in refs for c in contained)


def _entries(n: dict) -> Any:
    """``n.get("entry", ())``."""
    return n["entry"] if "entry" in n else ()


def _no_entry_has(n: dict, key: str) -> bool:
    for e in _entries(n):
        if type(e) is dict and key in e:
            return False
    return True


def _entries_all(n: dict, key: str, types: tuple[str, ...]) -> bool:
    """bdl-3 / bdl-4: ``entry.all(<key>.exists() = (%resource.type = ...))``. Without a
    type the comparison is empty, and all() holds only over no entries (FHIRPath)."""
    if "type" not in n:
        return not any(type(e) is dict for e in _entries(n))
    expected = n["type"] in types
    for e in _entries(n):
        if type(e) is dict and (key in e) != expected:
            return False
    return True


def _bdl7(n: dict, ctx: Any) -> bool:
    if "type" not in n or n["type"] == "history":  # no type: `type = 'history'` is empty
        return True
    seen = set()
    for e in _entries(n):
        if type(e) is dict and "fullUrl" in e:
            vid = ""
            if "resource" in e:
                res = e["resource"]
                if type(res) is dict and "meta" in res:
                    meta = res["meta"]
                    if meta:
                        vid = meta.get("versionId", "")
            url = e["fullUrl"]
            if type(url) is str and type(vid) is str:
                key = url + vid if vid else url  # (url + "" is url: no new string)
            else:
                key = f"{url}{vid}"
            if key in seen:
                return False
            seen.add(key)
    return True


def _one_patient(n: dict, ctx: Any) -> bool:
    count = 0
    for e in _entries(n):
        if type(e) is dict and "resource" in e:
            res = e["resource"]
            if type(res) is dict and "resourceType" in res and res["resourceType"] == "Patient":
                count += 1
    return count == 1


def _first_is(n: dict, kind: str) -> bool | None:
    entries = n.get("entry") or []
    if not entries or type(entries[0]) is not dict or type(entries[0].get("resource")) is not dict:
        return True
    return entries[0]["resource"].get("resourceType") == kind


def _obs7(n: dict, ctx: Any) -> bool:
    if not _has_value_key(n):
        return True
    own = _codings(n.get("code"))
    for comp in n.get("component", ()):
        if type(comp) is dict and any(c in own for c in _codings(comp.get("code"))):
            return False
    return True


def _ref1(n: dict, ctx: Any) -> bool:
    ref = n["reference"] if "reference" in n else None
    if type(ref) is not str or ref[:1] != "#":
        return True
    root = ctx.root if ctx.root is not None else {}
    return ref[1:] in {str(c.get("id")) for c in _contained(root)}


def _per1(n: dict, ctx: Any) -> bool | None:
    """start <= end, when both are there and comparable (same precision; FHIRPath leaves
    other comparisons empty, i.e. passing)."""
    start, end = n.get("start"), n.get("end")
    if type(start) is not str or type(end) is not str:
        return True
    if len(start) <= 10 and len(end) <= 10:
        return start <= end if len(start) == len(end) else True
    try:
        s, e = datetime.fromisoformat(start), datetime.fromisoformat(end)
        return s <= e if (s.tzinfo is None) == (e.tzinfo is None) else True
    except ValueError:
        return True  # not a dateTime: the primitive check reports it


def _sqty1(n: dict, ctx: Any) -> bool | None:
    """comparator.empty(): no comparator; with one (or its extensions) fhirpathpy decides."""
    return True if "comparator" not in n and "_comparator" not in n else None


def _drt1(n: dict, ctx: Any) -> bool | None:
    """A Duration with a code has a UCUM system and a value; when that is not plainly so,
    fhirpathpy decides."""
    if "code" not in n and "_code" not in n:
        return True
    if type(n.get("code")) is str and n.get("system") == UCUM and type(n.get("value")) in (
            int, float):
        return True
    return None


_NUMBER = (int, float, Decimal)  # a JSON number as read (orjson) or as rendered (Decimal)


def _age1(n: dict, ctx: Any) -> bool | None:
    """A code when there is a value, UCUM when there is a system, a positive value; with an
    extension on the value, code or system, or a value that is not a number, fhirpathpy
    decides."""
    if "_value" in n or "_code" in n or "_system" in n:
        return None
    value = n.get("value")
    if value is not None and type(value) not in _NUMBER:
        return None
    if value is not None and "code" not in n:
        return False
    if "system" in n and n["system"] != UCUM:
        return False
    return value is None or value > 0


def _rng2(n: dict, ctx: Any) -> bool | None:
    """low <= high when both are numbers in the same UCUM unit; any other pair (units to
    convert, no UCUM system, a missing value) fhirpathpy decides."""
    low, high = n.get("low"), n.get("high")
    if low is None or high is None:
        return True
    if type(low) is not dict or type(high) is not dict:
        return None
    a, b = low.get("value"), high.get("value")
    if type(a) not in _NUMBER or type(b) not in _NUMBER or "code" not in low \
            or low.get("code") != high.get("code") or low.get("system") != UCUM \
            or high.get("system") != UCUM:
        return None
    return a <= b


# txt-1: the XHTML a narrative may hold (HTML 4.0 formatting, tables, lists, links and
# images; no scripts, forms, frames, objects, head / body or event attributes) — the
# element and attribute names the FHIR reference validator accepts (``htmlChecks()``)
XHTML = "http://www.w3.org/1999/xhtml"
_HTML_ELEMENTS = frozenset((
    "p br div h1 h2 h3 h4 h5 h6 a span b em i strong small big tt dfn q var abbr acronym "
    "cite blockquote hr address bdo kbd sub sup ul ol li dl dt dd pre table caption "
    "colgroup col thead tr tfoot tbody th td code samp img map area").split())
_HTML_ATTRIBUTES = frozenset((
    "title style class id lang {http://www.w3.org/XML/1998/namespace}lang dir accesskey "
    "tabindex span width align valign char charoff abbr axis headers scope rowspan "
    "colspan").split())
_HTML_ELEMENT_ATTRIBUTES = frozenset((
    "a.href a.name a.charset a.type a.hreflang a.rel a.rev a.shape a.coords img.src "
    "img.border img.alt img.longdesc img.height img.width img.usemap img.ismap map.name "
    "area.shape area.coords area.href area.nohref area.alt table.summary table.width "
    "table.border table.frame table.rules table.cellspacing table.cellpadding pre.space "
    "td.nowrap blockquote.cite q.cite").split())
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = frozenset(("lt", "gt", "amp", "quot", "apos"))


def _xhtml(div: Any) -> Any:
    """The narrative's ``div`` parsed (HTML's named entities read as the characters they
    name), or None when it is not well-formed XML. No DTD, no network, no entity expansion
    beyond that. txt-1 and txt-2 read the same ``div`` one after the other: it is parsed
    once (the tree is only read)."""
    return _parsed_xhtml(div) if type(div) is str else None


@lru_cache(maxsize=16)
def _parsed_xhtml(div: str) -> Any:
    from html.entities import name2codepoint

    from lxml import etree

    text = _ENTITY.sub(lambda m: m.group(0) if m.group(1) in _XML_ENTITIES else (
        f"&#{name2codepoint[m.group(1)]};" if m.group(1) in name2codepoint else m.group(0)), div)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        return etree.fromstring(text.encode("utf-8"), parser)
    except (etree.XMLSyntaxError, ValueError):
        return None


def _txt1(div: Any, ctx: Any) -> bool:
    """An XHTML ``div`` holding only the narrative's elements and attributes."""
    root = _xhtml(div)
    if root is None or root.tag != f"{{{XHTML}}}div":
        return False
    for el in root.iter():
        if not isinstance(el.tag, str):  # a comment or processing instruction
            continue
        ns, _, name = el.tag[1:].partition("}") if el.tag[:1] == "{" else ("", "", el.tag)
        if ns != XHTML or name not in _HTML_ELEMENTS:
            return False
        for attr in el.attrib:
            if attr not in _HTML_ATTRIBUTES and f"{name}.{attr}" not in _HTML_ELEMENT_ATTRIBUTES:
                return False
    return True


def _txt2(div: Any, ctx: Any) -> bool:
    """Some content: text other than whitespace, or an image (a ``div`` that is not XML at
    all is txt-1's to report)."""
    root = _xhtml(div)
    if root is None:
        return True
    return any(t.strip() for t in root.itertext()) or \
        next(root.iter(f"{{{XHTML}}}img"), None) is not None


def citizen_id_check_digit(value: Any) -> bool:
    """GB 11643: 17 digits and a check digit (0-9 or X) — what pat-cn-1 states in FHIRPath."""
    if type(value) is not str or len(value) != 18 or not value[:17].isdigit() \
            or not value[:17].isascii():
        return False
    s = sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS))
    c = (12 - s % 11) % 11
    return value[17] == ("X" if c == 10 else str(c))


def _card_identifier(i: Any) -> bool:
    return type(i) is dict and any(c.get("system") == CARD_TYPE for c in _codings(i.get("type")))


def _hospital_card_system(n: dict, ctx: Any) -> bool:
    s = n.get("system")
    if s is None:
        return True  # empty; the slice's system (1..1) reports it
    return type(s) is str and s.startswith(f"{BASE}/sid/org/") and s.endswith("/card")


NATIVE: dict[str, tuple[str, Native]] = {
    "ele-1": ("hasValue() or (children().count() > id.count())",
              lambda n, ctx: type(n) is not dict or any(k != "id" for k in n)),
    "ext-1": ("extension.exists() != value.exists()",
              lambda n, ctx: ("extension" in n) != _has_value_key(n)),
    "dom-2": ("contained.contained.empty()",
              lambda n, ctx: not any("contained" in c for c in _contained(n))),
    "dom-3": ("contained.where((('#'+id in (%resource.descendants().reference | "
              "%resource.descendants().as(canonical) | %resource.descendants().as(uri) | "
              "%resource.descendants().as(url))) or descendants().where(reference = '#').exists() "
              "or descendants().where(as(canonical) = '#').exists() or "
              "descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id)"
              ".empty()", _dom3),
    "dom-4": ("contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()",
              lambda n, ctx: not any(type(c.get("meta")) is dict and (
                  "versionId" in c["meta"] or "lastUpdated" in c["meta"]) for c in _contained(n))),
    "dom-5": ("contained.meta.security.empty()",
              lambda n, ctx: not any(type(c.get("meta")) is dict and "security" in c["meta"]
                                     for c in _contained(n))),
    "dom-6": ("text.`div`.exists()",
              lambda n, ctx: type(n.get("text")) is dict and "div" in n["text"]),
    "bdl-1": ("total.empty() or (type = 'searchset') or (type = 'history')",
              lambda n, ctx: "total" not in n or "type" not in n
              or n["type"] in ("searchset", "history")),
    "bdl-2": ("entry.search.empty() or (type = 'searchset')",
              lambda n, ctx: "type" not in n or n["type"] == "searchset"
              or _no_entry_has(n, "search")),
    "bdl-3": ("entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = "
              "'transaction' or %resource.type = 'history'))",
              lambda n, ctx: _entries_all(n, "request", ("batch", "transaction", "history"))),
    "bdl-4": ("entry.all(response.exists() = (%resource.type = 'batch-response' or "
              "%resource.type = 'transaction-response' or %resource.type = 'history'))",
              lambda n, ctx: _entries_all(n, "response", ("batch-response", "transaction-response",
                                                         "history"))),
    "bdl-5": ("resource.exists() or request.exists() or response.exists()",
              lambda n, ctx: "resource" in n or "request" in n or "response" in n),
    "bdl-7": ("(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta"
              ".versionId).isDistinct()", _bdl7),
    "bdl-8": ("fullUrl.contains('/_history/').not()",
              lambda n, ctx: "fullUrl" not in n or type(n["fullUrl"]) is not str
              or "/_history/" not in n["fullUrl"]),
    "bdl-9": ("type = 'document' implies (identifier.system.exists() and identifier.value.exists())",
              lambda n, ctx: n.get("type") != "document" or (
                  type(n.get("identifier")) is dict and "system" in n["identifier"]
                  and "value" in n["identifier"])),
    "bdl-10": ("type = 'document' implies (timestamp.hasValue())",
               lambda n, ctx: n.get("type") != "document" or "timestamp" in n),
    "bdl-11": ("type = 'document' implies entry.first().resource.is(Composition)",
               lambda n, ctx: n.get("type") != "document" or _first_is(n, "Composition")),
    "bdl-12": ("type = 'message' implies entry.first().resource.is(MessageHeader)",
               lambda n, ctx: n.get("type") != "message" or _first_is(n, "MessageHeader")),
    "org-1": ("(identifier.count() + name.count()) > 0",
              lambda n, ctx: bool(n.get("identifier")) or "name" in n),
    "org-2": ("where(use = 'home').empty()", lambda n, ctx: n.get("use") != "home"),
    "org-3": ("where(use = 'home').empty()", lambda n, ctx: n.get("use") != "home"),
    "pat-1": ("name.exists() or telecom.exists() or address.exists() or organization.exists()",
              lambda n, ctx: any(k in n for k in ("name", "telecom", "address", "organization"))),
    "con-1": ("summary.exists() or assessment.exists()",
              lambda n, ctx: "summary" in n or "assessment" in n),
    "con-2": ("code.exists() or detail.exists()", lambda n, ctx: "code" in n or "detail" in n),
    "con-3": ("clinicalStatus.exists() or verificationStatus.coding.where(system='http://"
              "terminology.hl7.org/CodeSystem/condition-ver-status' and code = 'entered-in-error')"
              ".exists() or category.select($this='problem-list-item').empty()",
              lambda n, ctx: "clinicalStatus" in n or _has_coding(
                  n.get("verificationStatus"), _VER, ("entered-in-error",)) or not n.get("category")),
    "con-4": ("abatement.empty() or clinicalStatus.coding.where(system='http://terminology.hl7.org"
              "/CodeSystem/condition-clinical' and (code='resolved' or code='remission' or "
              "code='inactive')).exists()",
              lambda n, ctx: not _any_key_starts(n, "abatement") or _has_coding(
                  n.get("clinicalStatus"), _CLIN, ("resolved", "remission", "inactive"))),
    "con-5": ("verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/"
              "condition-ver-status' and code='entered-in-error').empty() or clinicalStatus.empty()",
              lambda n, ctx: "clinicalStatus" not in n or not _has_coding(
                  n.get("verificationStatus"), _VER, ("entered-in-error",))),
    "obs-3": ("low.exists() or high.exists() or text.exists()",
              lambda n, ctx: "low" in n or "high" in n or "text" in n),
    "obs-6": ("dataAbsentReason.empty() or value.empty()",
              lambda n, ctx: "dataAbsentReason" not in n or not _has_value_key(n)),
    "obs-7": ("value.empty() or component.code.where(coding.intersect(%resource.code.coding)"
              ".exists()).empty()", _obs7),
    "prr-1": ("orderDetail.empty() or code.exists()",
              lambda n, ctx: "orderDetail" not in n or "code" in n),
    "per-1": ("start.hasValue().not() or end.hasValue().not() or (start <= end)",
              _per1),
    "rng-2": ("low.empty() or high.empty() or (low <= high)", _rng2),
    "age-1": ("(code.exists() or value.empty()) and (system.empty() or system = %ucum) and "
              "(value.empty() or value.hasValue().not() or value > 0)", _age1),
    "qty-3": ("code.empty() or system.exists()", lambda n, ctx: "code" not in n or "system" in n),
    "cpt-2": ("value.empty() or system.exists()", lambda n, ctx: "value" not in n or "system" in n),
    "sqty-1": ("comparator.empty()", _sqty1),
    "drt-1": ("code.exists() implies ((system = %ucum) and value.exists())", _drt1),
    "att-1": ("data.empty() or contentType.exists()",
              lambda n, ctx: "data" not in n or "contentType" in n),
    "ref-1": ("reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
              "%rootResource.contained.id.trace('ids'))", _ref1),
    "txt-1": ("htmlChecks()", _txt1),
    "txt-2": ("htmlChecks()", _txt2),
    # the project's own (profiles/): the expressions are in the StructureDefinitions
    "pat-cn-1": ("", lambda n, ctx: citizen_id_check_digit(n)),
    "pat-cn-2": ("", lambda n, ctx: any(_card_identifier(i) for i in n.get("identifier", ()))),
    "pat-cn-3": ("", _hospital_card_system),
    "obs-cn-1": ("", lambda n, ctx: "unit" in n if "value" in n or "code" in n or "system" in n
                 or "comparator" in n or "unit" in n else None),
    "bdl-cn-1": ("", _one_patient),
}


# A native that holds whenever its node lacks this key is not called then (a dict lookup
# instead of a call: dom-2..dom-5 run on every resource, and almost none has `contained`).
GUARDS = {"dom-2": "contained", "dom-3": "contained", "dom-4": "contained",
          "dom-5": "contained", "bdl-1": "total", "bdl-2": "entry", "bdl-7": "entry",
          "bdl-8": "fullUrl", "obs-6": "dataAbsentReason", "obs-7": "component",
          "prr-1": "orderDetail", "per-1": "end", "rng-2": "low", "qty-3": "code",
          "cpt-2": "value", "att-1": "data", "ref-1": "reference"}

# natives whose context is a primitive value (the others are given JSON objects only)
PRIMITIVE_CONTEXT = frozenset({"pat-cn-1", "txt-1", "txt-2"})


def native(key: str, expression: str, project_expressions: dict[str, str]) -> Native | None:
    """The native function for a constraint, if one was written for this exact expression."""
    found = NATIVE.get(key)
    if found is None:
        return None
    expected = found[0] or project_expressions.get(key)
    return found[1] if expected == expression else None


class FhirPath:
    """Compiled fhirpathpy expressions and their cached verdicts (thread-safe enough: the
    caches only grow, and are cleared wholesale when full)."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._model: Any = None  # fhirpathpy's R4 model, loaded on first use (~0.1 s)
        self._parsed: dict[str, Any] = {}
        self._verdicts: dict[tuple[str, str, bytes], bool | None] = {}
        self._lock = threading.Lock()

    def _parse(self, expression: str) -> Any:
        parsed = self._parsed.get(expression)
        if parsed is None:
            from fhirpathpy.parser import parse

            # trace() only prints (to stdout, from fhirpathpy): drop it, the verdict is the same
            parsed = self._parsed[expression] = parse(_TRACE.sub("", expression))
        return parsed

    def holds(self, expression: str, base: str, node: Any, ctx: Any) -> bool | None:
        """True / False, or None when fhirpathpy cannot evaluate it."""
        local = "%resource" not in expression and "%rootResource" not in expression \
            and "resolve()" not in expression
        key = None
        if local:
            try:
                key = (expression, base, orjson.dumps(node, option=orjson.OPT_SORT_KEYS))
            except TypeError:
                key = None
            if key is not None and key in self._verdicts:
                return self._verdicts[key]
        verdict = self._evaluate(expression, base, node, ctx)
        if key is not None:
            if len(self._verdicts) >= self.LIMIT:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict

    def _evaluate(self, expression: str, base: str, node: Any, ctx: Any) -> bool | None:
        from fhirpathpy import apply_parsed_path
        from fhirpathpy.engine.nodes import ResourceNode

        try:
            parsed = self._parse(expression)
            variables = {"resource": ctx.resource, "rootResource": ctx.root,
                         "ucum": UCUM}
            if self._model is None:
                from fhirpathpy.models import models

                self._model = models["r4"]
            result = apply_parsed_path(ResourceNode.create_node(node, base), parsed,
                                       variables, self._model)
        except Exception:  # noqa: BLE001 - an expression fhirpathpy cannot evaluate
            return None
        if result == [False]:
            return False
        return True
