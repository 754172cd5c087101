"""Compile a StructureDefinition snapshot, once, into a tree of checker closures.

A checker is ``check(value, path, ctx)``: it appends OperationOutcome issues to
``ctx.out`` and never raises. What a snapshot says is decided at compile time — which
JSON keys an object may have and what each one is (array or single, which type, which
slices, which bindings, which invariants) — so at run time a check is a dict lookup and
a few calls per element. Data types and resource types compile once and are shared.

Written by hand because no Python library validates FHIR against profiles (fhir.resources
checks the base structure only; the official validator is Java). The rules follow the
FHIR R4 specification and the official validator's reporting style: one issue per
problem, ``expression`` the FHIRPath of the place (``Patient.identifier[0].value``).

This module decides what to check where; the closures that run are in its parts:
``objects`` (the walker of a JSON object), ``fields`` (one JSON key: single or array,
primitive or complex; paths built only where needed), ``slicing``, ``constraints`` (fixed
and pattern values, invariants), ``bindings``, ``primitives`` (JSON types and formats),
``invariants`` (native and fhirpathpy), ``memo`` (values found clean before),
``dispatch`` (resources inside others, chained checks), and ``elements`` (the snapshot as
a tree).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from conformance import primitives
from conformance.bindings import binding_check
from conformance.constraints import (Invariant, fixed_check, invariant, invariant_check,
                                     pattern_check)
from conformance.definitions import CORE, Definitions
from conformance.dispatch import chained, entered, forward, nothing, resource_item
from conformance.elements import Node, find, tree
from conformance.fields import (complex_array, complex_single, forbidden,
                                primitive_array, primitive_extension, primitive_single,
                                printable_array, printable_single, resource_type,
                                sliced_array)
from conformance.invariants import FhirPath
from conformance.memo import Clean, memoised
from conformance.objects import Shape, walker
from conformance.slicing import matcher, slicer

Check = Callable[[Any, str, Any], None]
INF = float("inf")
ELE_1 = "hasValue() or (children().count() > id.count())"
RESOURCE_TYPES = ("Resource", "DomainResource")
# Data about one person or one event — who, where, when, how much, which record — rarely
# repeats, and its check (a few strings and numbers; the codes in it have their own memo)
# costs less than a memo key (about 14 instructions a byte): such values are checked each
# time. (Measured on the visit Bundles: remembering them cost 24 k instructions a message
# more than it saved.) A Reference is also recorded at its place each time, for the
# Bundle's reference checks.
PER_EVENT = frozenset({"Reference", "Identifier", "HumanName", "Address", "ContactPoint",
                       "Period", "Quantity", "Age", "Count", "Distance", "Duration", "Money",
                       "Range"})


def _max(v: str) -> float:
    return INF if v == "*" else int(v)


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


class Compiler:
    def __init__(self, defs: Definitions, project_expressions: dict[str, str],
                 fhirpath: FhirPath | None = None, memo: bool = True, warnings: bool = True):
        self.defs = defs
        self.memo = memo
        self.warnings = warnings  # False: compile the error checks only (the pipeline)
        self.project_expressions = project_expressions
        self.fhirpath = fhirpath or FhirPath()
        self._roots: dict[str, Check] = {}
        self._building: dict[str, Check] = {}
        self._lock = threading.RLock()
        self._trees: dict[str, Node] = {}
        self._prims: dict[str, Check] = {}
        self._problems: dict[str, Callable[[Any], str | None]] = {}
        self._objects: dict[tuple[str, str], Check] = {}
        self._clean: dict[str, Clean] = {}  # primitive type → its values found clean

    # ---- entry points ----------------------------------------------------------------
    def root(self, url: str) -> Check | None:
        """The checker of a whole StructureDefinition (a resource or a data type), compiled
        on first use. Thread-safe: a checker is published only once it is complete (a
        recursive type, such as Extension.extension, meets its own stand-in meanwhile)."""
        fn = self._roots.get(url)
        if fn is not None:
            return fn
        with self._lock:
            fn = self._roots.get(url) or self._building.get(url)
            if fn is not None:
                return fn
            sd = self.defs.sd(url)
            if sd is None:
                return None
            cell: list[Check] = []
            self._building[url] = forward(cell)
            try:
                node = self._tree(sd)
                built = self._object(node, sd, node, resource=sd["kind"] == "resource")
            finally:
                del self._building[url]
            cell.append(built)
            self._roots[url] = built
            return built

    def _tree(self, sd: dict) -> Node:
        t = self._trees.get(sd["url"])
        if t is None:
            t = self._trees[sd["url"]] = tree(sd["elements"])
        return t

    # ---- types -----------------------------------------------------------------------
    def _is_primitive(self, code: str) -> bool:
        sd = self.defs.type_sd(code)
        return sd is not None and sd["kind"] == "primitive-type"

    def _regex(self, code: str) -> str | None:
        """The format of a primitive type's values."""
        sd = self.defs.type_sd(code)
        return next((e.get("regex") for e in sd["elements"] if e["path"].endswith(".value")),
                    None) if sd else None

    def _problem(self, code: str) -> Callable[[Any], str | None]:
        """value → why it is not a valid ``code`` (a primitive type), or None."""
        fn = self._problems.get(code)
        if fn is None:
            fn = self._problems[code] = primitives.problem_function(code, self._regex(code))
        return fn

    def _primitive(self, code: str) -> Check:
        fn = self._prims.get(code)
        if fn is None:
            fn = self._prims[code] = primitives.checker(self._problem(code))
        return fn

    def _type_check(self, t: dict) -> Check:
        code = t["code"]
        if code in RESOURCE_TYPES or (self.defs.type_sd(code) or {}).get("kind") == "resource":
            return self._resource_dispatch(t.get("profile", ()))
        if self._is_primitive(code):
            return self._primitive(code)
        for prof in t.get("profile", ()):
            fn = self.root(prof)
            if fn is not None:
                return fn
        fn = self.root(CORE + code)
        if fn is None:
            return nothing  # an unknown type: nothing to check against
        return fn

    def _resource_dispatch(self, profiles: list[str]) -> Check:
        by_type: dict[str, str] = {}
        for prof in profiles:
            sd = self.defs.sd(prof)
            if sd is not None:
                by_type.setdefault(sd["type"], sd["url"])

        def resolve(rtype: Any) -> tuple[Check, Check] | None:
            url = by_type.get(rtype) if type(rtype) is str else None
            fn = self.root(url or CORE + str(rtype)) if rtype else None
            core = self.defs.type_sd(str(rtype)) or {}
            if fn is None or (url is None and (core.get("kind") != "resource"
                                               or core.get("abstract"))):
                return None
            whole = entered(fn)
            sd = self.defs.sd(url or CORE + str(rtype))
            return fn, memoised(whole) if self.memo and self._self_contained(sd) else whole

        return resource_item(resolve, self.defs.unknown_type)

    def _self_contained(self, sd: dict | None) -> bool:
        """Does what decides about a resource of this definition depend on the resource
        alone? (Then a resource seen again — a patient's in each message of a visit — is
        remembered whole, with the references it records.) Not when a constraint of the
        definition, or of any data type known here, reads the containing resource or
        resolves a reference: ref-1, which reads it for a ``#`` reference only, excepted
        (the memo checks a value recording one each time)."""
        if sd is None:
            return False
        outside = ("%rootResource", "resolve()")
        sds = [sd] + [x for x in self.defs.sds.values() if x.get("kind") == "complex-type"]
        return not any(any(o in c[3] for o in outside) and c[0] != "ref-1"
                       for x in sds for el in x["elements"] for c in el.get("con", ()))

    # ---- element items ---------------------------------------------------------------
    def _item(self, node: Node, sd: dict, root: Node, t: dict | None = None,
              memo: bool = True) -> Check:
        """The checker of one value of ``node`` (of type ``t`` for a choice element);
        ``memo``: remembering the values found clean, where that is sound."""
        base, extras = self._item_parts(node, sd, root, t)
        check = chained(base, extras)
        code = (t or (node.el.get("types") or [{"code": "Element"}])[0])["code"]
        if memo and self.memo and self._memoizable(node, code):
            return memoised(check)
        return check

    def _item_parts(self, node: Node, sd: dict, root: Node,
                    t: dict | None) -> tuple[Check, list[Check]]:
        """What checks one value of ``node``: its type's (or its children's) checker, and
        the element's own checks on top (``_extras``)."""
        el = node.el
        if node.children:  # its own checks run in its walker
            return self._object(node, sd, root, t=t), []
        if el.get("cref"):
            target = find(root, el["cref"])
            base = self._shared_object(target, sd, root) if target else nothing
        else:
            base = self._type_check(t or (el.get("types") or [{"code": "Element"}])[0])
        return base, self._extras(node, sd, t)

    def _shared_object(self, node: Node, sd: dict, root: Node) -> Check:
        """One checker per element, for contentReference (which may recurse:
        Questionnaire.item.item → Questionnaire.item)."""
        key = (sd["url"], node.el["id"])
        fn = self._objects.get(key)
        if fn is None:
            cell: list[Check] = []
            self._objects[key] = forward(cell)
            cell.append(self._object(node, sd, root, own=False))
            fn = self._objects[key] = cell[0]
        return fn

    def _memoizable(self, node: Node, code: str) -> bool:
        """Complex values that hold no resource and whose checks look no further than
        themselves are checked once per distinct value (see ``memo.py``), but for those of
        the types of ``PER_EVENT``."""
        if code in RESOURCE_TYPES or code in PER_EVENT or self._is_primitive(code) or \
                code == "BackboneElement" and node.el["path"].startswith(
                    ("Bundle.entry", "Parameters.parameter")):
            return False
        if (self.defs.type_sd(code) or {}).get("kind") == "resource":
            return False
        return not _looks_outside(node)

    def _extras(self, node: Node, sd: dict, t: dict | None) -> list[Check]:
        """Fixed and pattern values, the binding, and invariants the type does not run."""
        return self._value_checks(node, t) + [invariant_check(inv)
                                              for inv in self._invariants(node, t)]

    def _value_checks(self, node: Node, t: dict | None) -> list[Check]:
        """The element's fixed or pattern value, and its binding."""
        el = node.el
        out: list[Check] = []
        if "fixed" in el:
            out.append(fixed_check(el["fixed"][1]))
        if "pattern" in el:
            out.append(pattern_check(el["pattern"][1]))
        code = (t or (el.get("types") or [{}])[0]).get("code")
        if "binding" in el and code in ("code", "Coding", "CodeableConcept"):
            b = self._binding(el["binding"], code)
            if b:
                out.append(b)
        return out

    def _invariants(self, node: Node, t: dict | None) -> list[Invariant]:
        """The element's invariants that its type does not run itself (ele-1: inline in the
        object walker)."""
        el = node.el
        code = (t or (el.get("types") or [{}])[0]).get("code")
        own = set()
        if not node.children and not el.get("cref") and code and not self._is_primitive(code):
            tsd = self.defs.type_sd(code)
            if tsd is not None:
                own = {c[0] for c in tsd["elements"][0].get("con", ())}
        base_path = el["path"] if node.children or el.get("cref") else (code or "Element")
        out = []
        for con in el.get("con", ()):
            if con[0] not in own and not (con[0] == "ele-1" and con[3] == ELE_1):
                inv = invariant(con, base_path, self.fhirpath, self.project_expressions,
                                self.warnings)
                if inv is not None:
                    out.append(inv)
        return out

    def _binding(self, binding: list, code: str) -> Check | None:
        strength, url = binding
        if strength != "required" and not self.warnings:
            return None
        return binding_check(strength, url, self.defs.valuesets.get(url), code)

    # ---- objects -----------------------------------------------------------------------
    def _object(self, node: Node, sd: dict, root: Node, resource: bool = False,
                t: dict | None = None, own: bool = True) -> Check:
        """The walker of an element with children. ``own``: with the element's own checks
        (not for a contentReference target: the referring element's apply there)."""
        shape = Shape()
        fields = shape.fields
        if resource:
            fields["resourceType"] = resource_type(sd["type"])
        required: list[tuple[str, tuple[str, ...], int]] = []
        prim_ext: set[str] = set()
        prim_arrays: list[str] = []  # JSON may hold null in them, where `_name` has an item
        for child in node.children:
            el = child.el
            name = child.name
            mx = _max(el["max"])
            if mx == 0:
                for n in self._names(child):
                    fields[n] = forbidden(n)
                continue
            is_array = el.get("bmax", el["max"]) != "1"
            if name.endswith("[x]"):
                names = []
                for t in el.get("types", ()):
                    cname = name[:-3] + _cap(t["code"])
                    names.append(cname)
                    fields[cname] = self._field(child, sd, root, cname, is_array, mx, t)
                    if self._is_primitive(t["code"]):
                        prim_ext.add(cname)
                    shape.choice_of[cname] = el["path"]
            else:
                names = [name]
                fields[name] = self._field(child, sd, root, name, is_array, mx, None)
                types = el.get("types") or ()
                if len(types) == 1 and self._is_primitive(types[0]["code"]):
                    prim_ext.add(name)
                    if is_array:
                        prim_arrays.append(name)
            if el["min"] > 0:
                required.append((el["path"], tuple(names), el["min"]))
        if prim_ext:
            element_check = self.root(CORE + "Element")
            for n in prim_ext:
                fields["_" + n] = primitive_extension(n, element_check)
        shape.required = tuple(required)
        shape.must = tuple(names[0] for _p, names, mn in required if mn == 1 and len(names) == 1)
        shape.prim_arrays = tuple(prim_arrays)
        if own:
            shape.extras = tuple(self._value_checks(node, t))
            shape.invariants = tuple(self._invariants(node, t))
            if node is not root:
                shape.not_object = shape.extras + tuple(map(invariant_check, shape.invariants))
        return walker(shape)

    def _names(self, child: Node) -> list[str]:
        name = child.name
        if name.endswith("[x]"):
            return [name[:-3] + _cap(t["code"]) for t in child.el.get("types", ())]
        return [name]

    def _field(self, child: Node, sd: dict, root: Node, key: str, is_array: bool, mx: float,
               t: dict | None) -> Check:
        el = child.el
        label = el["path"]
        code = (t or (el.get("types") or [{}])[0]).get("code", "")
        primitive = self._is_primitive(code)
        if primitive and not child.children and not el.get("cref") and not child.slices:
            why = self._problem(code)
            extras = tuple(self._extras(child, sd, t))
            spaces = primitives.printable_passes(self._regex(code))
            if not extras and spaces is not None:
                if is_array:
                    return printable_array(key, why, spaces, mx, label)
                return printable_single(key, why, spaces)
            if extras:  # values clean here: what the element adds is decided by the value too
                clean = Clean(remember=self.memo and not _looks_outside(child))
            else:
                clean = self._clean.setdefault(code, Clean())
            if is_array:
                return primitive_array(key, why, extras, clean, mx, label)
            return primitive_single(key, why, extras, clean)
        targets = None
        if code == "Reference":
            targets = tuple((self.defs.sd(x) or {}).get("type") or x.rsplit("/", 1)[-1]
                            for x in (t or el["types"][0]).get("target", ()))
        # a field that records no reference is remembered as a whole (its path is not even
        # built for a value seen before); a reference field, which must record each time,
        # remembers its values below the recording
        whole = targets is None and self.memo and self._memoizable(child, code)
        item = self._item(child, sd, root, t, memo=not (whole and not is_array))
        if not is_array:
            field = complex_single(key, item, targets)
            return memoised(field) if whole else field
        if child.slices:
            field = sliced_array(key, self._slicer(child, sd, root, item), mx, label)
        else:
            field = complex_array(key, item, targets, mx, label, skip_none=primitive)
        return memoised(field) if whole else field  # slices and all

    def _slicer(self, child: Node, sd: dict, root: Node, base_item: Check) -> Callable:
        slicing = child.el.get("slicing") or {"disc": [], "rules": "open"}
        slices = [(s.el["slice"], matcher(s, slicing["disc"]), self._item(s, sd, root),
                   s.el["min"], _max(s.el["max"])) for s in child.slices]
        return slicer(child.el["path"], slicing["rules"] == "closed", slices, base_item)


def _looks_outside(node: Node) -> bool:
    """Does a constraint on this element or below read beyond it (%resource)?"""
    if any("%resource" in c[3] or "%rootResource" in c[3] for c in node.el.get("con", ())):
        return True
    return any(_looks_outside(c) for c in node.children) or any(
        _looks_outside(c) for c in node.slices)


__all__ = ["Compiler"]

