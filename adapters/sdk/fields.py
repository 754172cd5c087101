"""Field specs: a dialect's mapping as data, with a fixed vocabulary.

A mapping file (TOML, beside the adapter module) holds::

    [namespaces]                 prefix = "uri"   (XML dialects)
    [maps.NAME]                  vendor value = canonical value (closed tables for `map:NAME`)

    [[field]]                    one canonical value
    from      = "his:Patient/his:Name"   where the vendor keeps it (XPath, column, JSON path)
    to        = "patient.name"           canonical path; `[]` appends an item: "patient.cards[].value"
    transform = ["trim"]                 names from TRANSFORMS, applied in order
    required  = true                     empty or absent is an error at the vendor's position
    default   = "outpatient"             used when empty or absent (no `from`: always)
    with      = { type = "citizen_id" }  constants set beside `to` (in the same new item)
    use       = "function_name"          a named function of the adapter module

    [[group]]                    a repeated part: each item becomes one canonical list item
    each = "his:Fees/his:Fee"    where the items are
    into = "fees"                the canonical list
    [[group.field]] ...          fields relative to the item

Nothing else is accepted. Logic that is more than mapping is a named function.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

from adapters.paths import set_path
from gateway.identifiers import org_scoped

FIELD_KEYS = {"from", "to", "transform", "required", "default", "with", "use"}
GROUP_KEYS = {"each", "into", "field"}
TOP_KEYS = {"field", "group", "maps", "namespaces"}
CHINA = timezone(timedelta(hours=8))


class SpecError(ValueError):
    """A mapping file says something outside the vocabulary."""


class Problem(ValueError):
    """A value a transform cannot take; reported at the vendor's position."""


class Record(Protocol):
    """One part of the vendor's input (a document, an element, a CSV row)."""

    def get(self, source: str) -> tuple[str | None, str]: ...  # (text, vendor location)

    def items(self, each: str) -> list[Record]: ...

    def where(self) -> str: ...


@dataclass(frozen=True)
class FieldSpec:
    source: str | None
    to: str
    transforms: tuple[tuple[str, str | None], ...] = ()
    required: bool = False
    default: Any = None
    with_: dict[str, Any] = field(default_factory=dict)
    use: str | None = None


@dataclass(frozen=True)
class Group:
    each: str
    into: str
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True)
class Mapping:
    fields: tuple[FieldSpec, ...]
    groups: tuple[Group, ...] = ()
    maps: dict[str, dict[str, Any]] = field(default_factory=dict)
    namespaces: dict[str, str] = field(default_factory=dict)


# -- transforms: name[:argument] -------------------------------------------------------

def _trim(v: Any, arg: str | None, ctx: Context) -> Any:
    return v.strip() if isinstance(v, str) else v


def _upper(v: Any, arg: str | None, ctx: Context) -> Any:
    return v.upper() if isinstance(v, str) else v


def _decimal(v: Any, arg: str | None, ctx: Context) -> str:
    try:
        d = Decimal(str(v).strip().replace(",", ""))
    except InvalidOperation:
        raise Problem(f"{v!r} is not a number") from None
    if not d.is_finite():
        raise Problem(f"{v!r} is not a number")
    return str(d)


def _int(v: Any, arg: str | None, ctx: Context) -> int:
    text = str(v).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise Problem(f"{v!r} is not a whole number")
    return int(text)


def _date(v: Any, arg: str | None, ctx: Context) -> str:
    try:
        return datetime.strptime(str(v).strip(), arg or "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise Problem(f"{v!r} is not a date of the form {arg or '%Y-%m-%d'}") from None


def _datetime(v: Any, arg: str | None, ctx: Context) -> str:
    """A local time; without an offset in the format, China time (+08:00) is meant."""
    try:
        value = datetime.strptime(str(v).strip(), arg or "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise Problem(f"{v!r} is not a time of the form {arg or '%Y-%m-%d %H:%M:%S'}") from None
    return (value if value.tzinfo else value.replace(tzinfo=CHINA)).isoformat()


def _split(v: Any, arg: str | None, ctx: Context) -> list[str]:
    return [p.strip() for p in str(v).split(arg or ",") if p.strip()]


def _map(v: Any, arg: str | None, ctx: Context) -> Any:
    table = ctx.mapping.maps[arg or ""]
    if str(v) not in table:
        raise Problem(f"{v!r} is not one of {', '.join(sorted(table))}")
    return table[str(v)]


def _code(v: Any, arg: str | None, ctx: Context) -> dict[str, str]:
    """A code in the vendor's table: ``code:URI`` keeps that system; ``code:KIND`` (sex,
    fee-item, drug, department, diagnosis) is the hospital's own table — the translate
    stage maps it to national codes through the hospital's maps, then the national ones."""
    system = arg if arg and ":" in arg else org_scoped(ctx.org or "unknown", arg or "code")
    return {"system": system, "code": str(v)}


TRANSFORMS: dict[str, Callable[[Any, str | None, Context], Any]] = {
    "trim": _trim, "upper": _upper, "decimal": _decimal, "int": _int, "date": _date,
    "datetime": _datetime, "split": _split, "map": _map, "code": _code,
}
NEEDS_ARGUMENT = {"map", "code"}


# -- loading ---------------------------------------------------------------------------

def _check(keys: set[str], allowed: set[str], where: str) -> None:
    extra = keys - allowed
    if extra:
        raise SpecError(f"{where}: unknown key(s) {sorted(extra)}; allowed: {sorted(allowed)}")


def _field(spec: dict[str, Any], where: str, maps: dict[str, Any]) -> FieldSpec:
    _check(set(spec), FIELD_KEYS, where)
    if "to" not in spec:
        raise SpecError(f"{where}: 'to' is required")
    if "from" not in spec and "default" not in spec and "use" not in spec:
        raise SpecError(f"{where}: give 'from', 'default' or 'use'")
    transforms = []
    for t in spec.get("transform", ()):
        name, _, arg = t.partition(":")
        if name not in TRANSFORMS:
            raise SpecError(f"{where}: unknown transform {name!r}; one of {', '.join(TRANSFORMS)}")
        if name in NEEDS_ARGUMENT and not arg:
            raise SpecError(f"{where}: transform {name!r} needs an argument ({name}:...)")
        if name == "map" and arg not in maps:
            raise SpecError(f"{where}: no table [maps.{arg}]")
        transforms.append((name, arg or None))
    return FieldSpec(source=spec.get("from"), to=spec["to"], transforms=tuple(transforms),
                     required=bool(spec.get("required", False)), default=spec.get("default"),
                     with_=dict(spec.get("with", {})), use=spec.get("use"))


def load(path: Path) -> Mapping:
    """Read and check a mapping file; a SpecError names the file and the entry."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path.name}: {exc}") from None
    _check(set(raw), TOP_KEYS, path.name)
    maps = {k: {str(a): b for a, b in v.items()} for k, v in raw.get("maps", {}).items()}
    fields = tuple(_field(s, f"{path.name} field {i + 1}", maps)
                   for i, s in enumerate(raw.get("field", ())))
    groups = []
    for g, spec in enumerate(raw.get("group", ())):
        where = f"{path.name} group {g + 1}"
        _check(set(spec), GROUP_KEYS, where)
        if "each" not in spec or "into" not in spec:
            raise SpecError(f"{where}: 'each' and 'into' are required")
        groups.append(Group(spec["each"], spec["into"].removesuffix("[]"), tuple(
            _field(s, f"{where} field {i + 1}", maps) for i, s in enumerate(spec.get("field", ())))))
    return Mapping(fields, tuple(groups), maps, dict(raw.get("namespaces", {})))


# -- applying --------------------------------------------------------------------------

@dataclass
class Context:
    """What transforms and named functions see: the mapping, the organisation, the record."""

    mapping: Mapping
    org: str | None
    record: Record | None = None


@dataclass
class Mapped:
    data: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)  # canonical path → vendor location
    issues: list[tuple[str, str, str]] = field(default_factory=list)  # (location, code, text)


def apply(mapping: Mapping, record: Record, *, org: str | None,
          functions: dict[str, Callable[..., Any]] | None = None) -> Mapped:
    """Map one record (and its groups) to a canonical-visit dict, keeping provenance."""
    out = Mapped()
    ctx = Context(mapping, org)
    _fields(mapping.fields, record, out.data, "", out, ctx, functions or {})
    for group in mapping.groups:
        items = out.data.setdefault(group.into, [])
        for sub in record.items(group.each):
            item: dict[str, Any] = {}
            prefix = f"{group.into}[{len(items)}]"
            out.provenance[prefix] = sub.where()
            items.append(item)
            _fields(group.fields, sub, item, prefix + ".", out, ctx, functions or {})
    return out


def _fields(specs: tuple[FieldSpec, ...], record: Record, target: dict[str, Any], prefix: str,
            out: Mapped, ctx: Context, functions: dict[str, Callable[..., Any]]) -> None:
    ctx.record = record
    for spec in specs:
        value, where = record.get(spec.source) if spec.source else (None, record.where())
        if isinstance(value, str) and not value.strip():
            value = None
        try:
            if value is not None:
                for name, arg in spec.transforms:
                    value = TRANSFORMS[name](value, arg, ctx)
            if spec.use:
                if spec.use not in functions:
                    raise Problem(f"the mapping names an unknown function {spec.use!r}")
                value = functions[spec.use](value, ctx)
        except Problem as exc:
            out.issues.append((where, "value", f"{where}: {exc}"))
            continue
        if value is None or value == [] or value == "":
            if spec.default is not None:
                value = spec.default
            elif spec.required:
                out.issues.append((where, "required", f"{where}: required and empty"))
                continue
            else:
                out.provenance.setdefault(prefix + spec.to.replace("[]", ""), where)
                continue
        concrete = set_path(target, spec.to, value, spec.with_)
        out.provenance[prefix + concrete] = where
        if not prefix and concrete == "org.code" and ctx.org is None:
            ctx.org = str(value)  # the document names its organisation: hospital-scoped codes
