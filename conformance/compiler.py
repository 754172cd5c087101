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

Its parts: ``elements`` (the snapshot as a tree), ``primitives`` (JSON types and formats),
``patterns`` (fixed / pattern values, slice discriminators), ``bindings``, ``invariants``
(native and fhirpathpy), ``memo`` (values found clean before).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson

from conformance import primitives
from conformance.bindings import binding_check
from conformance.definitions import CORE, Definitions
from conformance.elements import Node, find, tree
from conformance.invariants import GUARDS, PRIMITIVE_CONTEXT, FhirPath, native
from conformance.memo import memoised
from conformance.patterns import getter, pattern_matcher
from gateway.errors import issue

Check = Callable[[Any, str, Any], None]
INF = float("inf")
ELE_1 = "hasValue() or (children().count() > id.count())"
ELE_1_TEXT = "All FHIR elements must have a @value or children (ele-1)"
RESOURCE_TYPES = ("Resource", "DomainResource")


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
        self._objects: dict[tuple[str, str], Check] = {}

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
            self._building[url] = lambda v, p, ctx: cell[0](v, p, ctx)
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

    def _primitive(self, code: str) -> Check:
        fn = self._prims.get(code)
        if fn is None:
            sd = self.defs.type_sd(code)
            regex = next((e.get("regex") for e in sd["elements"] if e["path"].endswith(".value")),
                         None) if sd else None
            fn = self._prims[code] = primitives.checker(code, regex)
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
            return lambda v, p, ctx: None  # an unknown type: nothing to check against
        return fn

    def _resource_dispatch(self, profiles: list[str]) -> Check:
        by_type: dict[str, str] = {}
        for prof in profiles:
            sd = self.defs.sd(prof)
            if sd is not None:
                by_type.setdefault(sd["type"], sd["url"])

        def check(value: Any, path: str, ctx: Any) -> None:
            if type(value) is not dict:
                ctx.out.append(issue("a resource must be a JSON object", path,
                                     code="structure", error_code="6001"))
                return
            rtype = value.get("resourceType")
            url = by_type.get(rtype) if type(rtype) is str else None
            fn = self.root(url or CORE + str(rtype)) if rtype else None
            core = self.defs.type_sd(str(rtype)) or {}
            if fn is None or (url is None and (core.get("kind") != "resource"
                                               or core.get("abstract"))):
                ctx.out.append(self.defs.unknown_type(rtype, path))
                return
            ctx.resource_check(value, path, fn)
        return check

    # ---- element items ---------------------------------------------------------------
    def _item(self, node: Node, sd: dict, root: Node, t: dict | None = None) -> Check:
        """The checker of one value of ``node`` (of type ``t`` for a choice element)."""
        el = node.el
        code = (t or (el.get("types") or [{"code": "Element"}])[0])["code"]
        if node.children:
            base = self._object(node, sd, root)
        elif el.get("cref"):
            target = find(root, el["cref"])
            base = self._shared_object(target, sd, root) if target else (lambda v, p, ctx: None)
        else:
            base = self._type_check(t or (el.get("types") or [{"code": "Element"}])[0])
        check = _chain(base, self._extras(node, sd, t))
        if self.memo and self._memoizable(node, code):
            return memoised(check, code == "Reference")
        return check

    def _shared_object(self, node: Node, sd: dict, root: Node) -> Check:
        """One checker per element, for contentReference (which may recurse:
        Questionnaire.item.item → Questionnaire.item)."""
        key = (sd["url"], node.el["id"])
        fn = self._objects.get(key)
        if fn is None:
            cell: list[Check] = []
            self._objects[key] = lambda v, p, ctx: cell[0](v, p, ctx)
            cell.append(self._object(node, sd, root))
            fn = self._objects[key] = cell[0]
        return fn

    def _memoizable(self, node: Node, code: str) -> bool:
        """Complex values that hold no resource and whose checks look no further than
        themselves are checked once per distinct value (see ``_memo``)."""
        if code in RESOURCE_TYPES or self._is_primitive(code) or code == "BackboneElement" \
                and node.el["path"].startswith(("Bundle.entry", "Parameters.parameter")):
            return False
        if (self.defs.type_sd(code) or {}).get("kind") == "resource":
            return False
        return not _looks_outside(node)

    def _extras(self, node: Node, sd: dict, t: dict | None) -> list[Check]:
        """Fixed and pattern values, the binding, and invariants the type does not run."""
        el = node.el
        out: list[Check] = []
        if "fixed" in el:
            fixed = el["fixed"][1]

            def fixed_check(v, p, ctx):
                if v != fixed:
                    ctx.out.append(issue(f"the value must be exactly {_show(fixed)}", p,
                                         code="value", error_code="6001"))
            out.append(fixed_check)
        if "pattern" in el:
            pattern = el["pattern"][1]
            matcher = pattern_matcher(pattern)

            def pattern_check(v, p, ctx):
                if not matcher(v):
                    ctx.out.append(issue(f"the value must match the pattern {_show(pattern)}",
                                         p, code="value", error_code="6001"))
            out.append(pattern_check)
        code = (t or (el.get("types") or [{}])[0]).get("code")
        if "binding" in el and code in ("code", "Coding", "CodeableConcept"):
            b = self._binding(el["binding"], code)
            if b:
                out.append(b)
        own = set()
        if not node.children and not el.get("cref") and code and not self._is_primitive(code):
            tsd = self.defs.type_sd(code)
            if tsd is not None:
                own = {c[0] for c in tsd["elements"][0].get("con", ())}
        base_path = el["path"] if node.children or el.get("cref") else (code or "Element")
        for con in el.get("con", ()):
            if con[0] not in own and not (con[0] == "ele-1" and con[3] == ELE_1):
                inv = self._invariant(con, base_path)  # ele-1: inline in _object
                if inv is not None:
                    out.append(inv)
        return out

    def _binding(self, binding: list, code: str) -> Check | None:
        strength, url = binding
        if strength != "required" and not self.warnings:
            return None
        return binding_check(strength, url, self.defs.valuesets.get(url), code)

    def _invariant(self, con: list, base_path: str) -> Check | None:
        key, severity, human, expression = con
        if severity != "error" and not self.warnings:
            return None
        fn = native(key, expression, self.project_expressions)
        fp = self.fhirpath
        if severity not in ("error", "warning"):
            severity = "warning"
        text = f"{human} ({key})"

        def failed(p, ctx):
            ctx.out.append(issue(text, p, code="invariant", severity=severity, error_code="6005"))

        if fn is not None:
            on_primitive = key in PRIMITIVE_CONTEXT
            guard = GUARDS.get(key)
            if guard is not None:
                def check_guarded(v, p, ctx):
                    if type(v) is dict and guard in v:
                        ok = _safely(fn, v, ctx)
                        if ok is None:
                            ok = fp.holds(expression, base_path, v, ctx)
                        if ok is False:
                            failed(p, ctx)
                return check_guarded

            def check_native(v, p, ctx):
                ok = _safely(fn, v, ctx) if on_primitive or type(v) is dict else True
                if ok is None:
                    ok = fp.holds(expression, base_path, v, ctx)
                if ok is False:
                    failed(p, ctx)
            return check_native

        def check_fhirpath(v, p, ctx):
            if fp.holds(expression, base_path, v, ctx) is False:
                failed(p, ctx)
        return check_fhirpath

    # ---- objects -----------------------------------------------------------------------
    def _object(self, node: Node, sd: dict, root: Node, resource: bool = False) -> Check:
        fields: dict[str, Check] = {}
        required: list[tuple[str, tuple[str, ...], int]] = []
        choices: list[tuple[str, tuple[str, ...]]] = []
        prim_ext: set[str] = set()
        prim_arrays: set[str] = set()  # JSON may hold null in them, where `_name` has an item
        element_check = None
        for child in node.children:
            el = child.el
            name = child.name
            mx = _max(el["max"])
            if mx == 0:
                names = self._names(child)
                for n in names:
                    fields[n] = _forbidden(n)
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
                choices.append((el["path"], tuple(names)))
            else:
                names = [name]
                fields[name] = self._field(child, sd, root, name, is_array, mx, None)
                types = el.get("types") or ()
                if len(types) == 1 and self._is_primitive(types[0]["code"]):
                    prim_ext.add(name)
                    if is_array:
                        prim_arrays.add(name)
            if el["min"] > 0:
                required.append((el["path"], tuple(names), el["min"]))
        if prim_ext:
            element_check = self.root(CORE + "Element")
            for n in prim_ext:
                fields["_" + n] = _prim_extension(n, element_check)
        rtype = sd["type"] if resource else None
        invariants = tuple(self._extras(node, sd, None)) if node is root else ()
        required_t = tuple(required)
        prim_arrays_f = frozenset(prim_arrays)
        choice_of = {k: epath for epath, names in choices for k in names}
        choice_keys = frozenset(choice_of)

        def check(obj, path, ctx):
            if type(obj) is not dict:
                ctx.out.append(issue("expected a JSON object", path, code="structure",
                                     error_code="6001"))
                return
            if len(obj) < 2 and (not obj or "id" in obj):
                ctx.out.append(issue(ELE_1_TEXT, path, code="invariant", error_code="6005"))
            for key, value in obj.items():
                f = fields.get(key)
                if f is not None:
                    f(value, path, ctx)
                elif key == "resourceType" and rtype is not None:
                    if value != rtype:
                        ctx.out.append(issue(f"resourceType must be {rtype!r}",
                                             f"{path}.resourceType", code="structure",
                                             error_code="6001"))
                else:
                    ctx.out.append(issue(f"unrecognised property {key!r}",
                                         f"{path}.{key}", code="structure", error_code="6001"))
            for epath, names, mn in required_t:
                if mn == 1 and len(names) == 1 and names[0] in obj:
                    continue
                n = 0
                for k in names:
                    if k in obj:
                        v = obj[k]
                        n += len(v) if type(v) is list else 1
                    elif "_" + k in obj:
                        n += 1
                if n < mn:
                    ctx.out.append(issue(f"{epath}: minimum required = {mn}, but only found {n}",
                                         path, code="required", error_code="6001"))
            if choice_keys and len(obj) > 1 and len(present := choice_keys & obj.keys()) > 1:
                hit = [choice_of[k] for k in present]
                if len(hit) > 1 and len(set(hit)) < len(hit):
                    for epath in sorted({e for e in hit if hit.count(e) > 1}):
                        ctx.out.append(issue(f"{epath}: only one of the types may be present",
                                             path, code="structure", error_code="6001"))
            if prim_arrays_f and len(present := prim_arrays_f & obj.keys()):
                for k in present:
                    _nulls_aligned(obj, k, path, ctx)
            for inv in invariants:
                inv(obj, path, ctx)
        return check

    def _names(self, child: Node) -> list[str]:
        name = child.name
        if name.endswith("[x]"):
            return [name[:-3] + _cap(t["code"]) for t in child.el.get("types", ())]
        return [name]

    def _field(self, child: Node, sd: dict, root: Node, key: str, is_array: bool, mx: float,
               t: dict | None) -> Check:
        item = self._item(child, sd, root, t)
        label = child.el["path"]
        slicer = self._slicer(child, sd, root, item) if child.slices else None
        if t is not None and t["code"] == "Reference" or (
                t is None and (child.el.get("types") or [{}])[0].get("code") == "Reference"):
            targets = tuple((self.defs.sd(x) or {}).get("type") or x.rsplit("/", 1)[-1]
                            for x in (t or child.el["types"][0]).get("target", ()))
            item = _recording(item, targets)

        primitive = self._is_primitive((t or (child.el.get("types") or [{}])[0]).get("code", ""))
        if not is_array:
            def single(value, path, ctx):
                p = path + "." + key
                if type(value) is list:
                    ctx.out.append(issue("must be a single value, not an array", p,
                                         code="structure", error_code="6001"))
                    return
                item(value, p, ctx)
            return single

        def array(value, path, ctx):
            p = path + "." + key
            if type(value) is not list:
                ctx.out.append(issue("must be an array", p, code="structure",
                                     error_code="6001"))
                return
            if not value:
                ctx.out.append(issue("an array must not be empty", p, code="structure",
                                     error_code="6001"))
                return
            if len(value) > mx:
                ctx.out.append(issue(f"{label}: maximum allowed = {int(mx)}, but found {len(value)}",
                                     p, code="structure", error_code="6001"))
            if slicer is not None:
                slicer(value, p, ctx)
                return
            for i, v in enumerate(value):
                if v is None and primitive:
                    continue  # a null aligned with `_key`: the object's check decides
                item(v, f"{p}[{i}]", ctx)
        return array

    def _slicer(self, child: Node, sd: dict, root: Node, base_item: Check) -> Callable:
        slicing = child.el.get("slicing") or {"disc": [], "rules": "open"}
        closed = slicing["rules"] == "closed"
        label = child.el["path"]
        slices = []
        for s in child.slices:
            matcher = self._matcher(s, slicing["disc"])
            slices.append((s.el["slice"], matcher, self._item(s, sd, root), s.el["min"],
                           _max(s.el["max"])))

        def run(values, p, ctx):
            counts = [0] * len(slices)
            for i, v in enumerate(values):
                pi = f"{p}[{i}]"
                for j, (_name, matcher, check, _mn, _mx) in enumerate(slices):
                    if matcher(v):
                        counts[j] += 1
                        check(v, pi, ctx)
                        break
                else:
                    if closed:
                        ctx.out.append(issue(f"matches no slice of {label}, and the slicing "
                                             f"is closed", pi, code="structure", error_code="6001"))
                    base_item(v, pi, ctx)
            for j, (name, _m, _c, mn, mx) in enumerate(slices):
                if counts[j] < mn:
                    ctx.out.append(issue(f"{label}:{name}: minimum required = {mn}, but only found "
                                         f"{counts[j]}", p, code="required", error_code="6001"))
                elif counts[j] > mx:
                    ctx.out.append(issue(f"{label}:{name}: maximum allowed = {int(mx)}, but found "
                                         f"{counts[j]}", p, code="structure", error_code="6001"))
        return run

    def _matcher(self, s: Node, discriminators: list) -> Callable[[Any], bool]:
        tests = []
        for kind, dpath in discriminators:
            if kind in ("exists", "type"):
                target = self._discriminated(s, dpath)
                if target is None:
                    continue
                if kind == "exists":
                    present = target.el["min"] > 0 or target.el["max"] != "0"
                    tests.append((getter(dpath), lambda got, present=present: bool(got) == present))
                else:  # type: resources by resourceType (Bundle.entry.resource, contained)
                    codes = {t["code"] for t in target.el.get("types", ())}
                    tests.append((getter(dpath), lambda got, codes=codes: any(
                        type(g) is dict and g.get("resourceType") in codes for g in got)))
                continue
            expected = self._discriminator_value(s, dpath)
            if expected is None:
                continue
            how, value = expected
            if kind == "value" and how == "fixed":
                tests.append((getter(dpath), lambda got, value=value: value in got))
            else:
                m = pattern_matcher(value)
                tests.append((getter(dpath), lambda got, m=m: any(m(g) for g in got)))
        if not tests:
            return lambda v: False
        if len(tests) == 1:
            (get, test), = tests
            return lambda v: test(get(v))

        def match(v):
            for get, test in tests:
                if not test(get(v)):
                    return False
            return True
        return match

    def _discriminated(self, s: Node, dpath: str) -> Node | None:
        """The element a discriminator path names inside slice ``s``."""
        node: Node | None = s
        if dpath not in ("$this", ""):
            for part in dpath.split("."):
                node = next((c for c in node.children if c.name == part), None)
                if node is None:
                    break
        return node

    def _discriminator_value(self, s: Node, dpath: str) -> tuple[str, Any] | None:
        node = self._discriminated(s, dpath)
        if node is not None:
            if "fixed" in node.el:
                return "fixed", node.el["fixed"][1]
            if "pattern" in node.el:
                return "pattern", node.el["pattern"][1]
        if dpath == "url":  # an extension slice: its url is the extension's canonical
            for t in s.el.get("types", ()):
                for prof in t.get("profile", ()):
                    return "fixed", prof
        return None


def _safely(fn: Any, v: Any, ctx: Any) -> bool | None:
    """A native invariant on malformed JSON (a string where an object belongs): undecided,
    fhirpathpy decides; the structure checks report the malformation itself."""
    try:
        return fn(v, ctx)
    except (AttributeError, TypeError, KeyError, ValueError):
        return None


def _looks_outside(node: Node) -> bool:
    """Does a constraint on this element or below read beyond it (%resource)?"""
    if any("%resource" in c[3] or "%rootResource" in c[3] for c in node.el.get("con", ())):
        return True
    return any(_looks_outside(c) for c in node.children) or any(
        _looks_outside(c) for c in node.slices)


def _chain(base: Check, extras: list[Check]) -> Check:
    if not extras:
        return base
    if len(extras) == 1:
        only = extras[0]

        def both(v, p, ctx):
            base(v, p, ctx)
            only(v, p, ctx)
        return both

    def all_of(v, p, ctx):
        base(v, p, ctx)
        for x in extras:
            x(v, p, ctx)
    return all_of


def _show(v: Any) -> str:
    return orjson.dumps(v).decode()


def _nulls_aligned(obj: dict, key: str, path: str, ctx: Any) -> None:
    """``"given": ["a", null], "_given": [null, {...}]``: a null item needs an extension
    item at the same index."""
    values = obj[key]
    if type(values) is not list or None not in values:
        return
    ext = obj.get("_" + key)
    for i, v in enumerate(values):
        if v is None and not (type(ext) is list and i < len(ext) and ext[i] is not None):
            p = f"{path}.{key}[{i}]"
            ctx.out.append(issue(f"null here needs an extension at _{key}[{i}]", p,
                                 code="structure", error_code="6001"))


def _forbidden(key: str) -> Check:
    def check(value, path, ctx):
        p = path + "." + key
        ctx.out.append(issue("this element is not allowed here (max = 0)", p,
                             code="structure", error_code="6001"))
    return check


def _prim_extension(name: str, element_check: Check) -> Check:
    key = "_" + name

    def check(value, path, ctx):
        p = path + "." + key
        for i, v in enumerate(value if type(value) is list else (value,)):
            if v is not None:
                element_check(v, f"{p}[{i}]" if type(value) is list else p, ctx)
    return check


def _recording(item: Check, targets: tuple[str, ...]) -> Check:
    """A Reference checker that also records the reference for the Bundle's checks."""
    def check(value, path, ctx):
        item(value, path, ctx)
        if type(value) is dict:
            ref = value.get("reference")
            if type(ref) is str:
                ctx.refs.append((ref, path, targets))
    return check


__all__ = ["Compiler"]
