"""启明 HIS (QiMing) nightly database views: five CSV files (patients, visits, diagnoses,
prescriptions, fees) sent together as a zip, joined here into one canonical visit per row
of visits.csv (see DIALECT.md).

The field mapping is data (``mapping.toml``); the join is the named code below. A batch
is read visit by visit: a visit with a bad row is rejected with that row's file, row and
column; the others go on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.sdk import Manifest, Problem, Reading, apply, load, problems
from adapters.sdk.fields import Context
from adapters.sdk.reading import finish
from adapters.sdk.sources import CsvRow, Joined
from adapters.sdk.tables import read_tables, unzip
from gateway.errors import GatewayError
from gateway.visit import OutpatientVisit

HERE = Path(__file__).parent
MANIFEST = Manifest(
    id="qiming_dbview", vendor="启明 HIS nightly database views", formats=("csv",),
    versions=("2019", "2023"), contact="dataview@qiming-his.cn",
    description="patients / visits / diagnoses / prescriptions / fees views as CSV, zipped",
    batch=True, content_types=("application/zip",))
MAPPING = load(HERE / "mapping.toml")
# file → (columns it must have, required file); the key columns that join them
TABLES: dict[str, tuple[set[str], bool]] = {
    "patients.csv": ({"patient_id", "name", "sex"}, True),
    "visits.csv": ({"visit_no", "patient_id", "org_code", "visit_time"}, True),
    "diagnoses.csv": ({"visit_no", "icd_code"}, False),
    "prescriptions.csv": ({"visit_no", "order_no"}, False),
    "fees.csv": ({"visit_no", "line_no", "amount"}, False),
}
CHILDREN = ("diagnoses", "prescriptions", "fees")


def hospital_card(value: Any, ctx: Context) -> dict[str, Any] | None:
    """card_no: the hospital's own visit card, issued by the visit's organisation."""
    return None if value is None else {"type": "hospital_card", "value": value, "issuer": ctx.org}


def insurance(value: Any, ctx: Context) -> dict[str, Any] | None:
    """insurance_type: empty or ZF self-pay; else the NHSA insutype code (310, 390, ...)."""
    if value is None or value.upper() == "ZF":
        return {"kind": "self_pay"}
    if not value.isdigit():
        raise Problem(f"{value!r} is neither ZF nor an NHSA insurance type code")
    return {"kind": "insured", "insurance_type": value}


FUNCTIONS = {f.__name__: f for f in (hospital_card, insurance)}


def _key(row: CsvRow, column: str) -> str:
    return row.values.get(column, "").strip()


def read_batch(raw: bytes, org: str | None = None) -> list[Reading]:
    """One reading per visit (and one per orphan or duplicate row)."""
    try:
        files = unzip(raw)
    except ValueError as exc:
        return [Reading(error=GatewayError.of(str(exc), None, code="structure",
                                              error_code="2000", status=400))]
    tables = read_tables(files, TABLES)
    if tables.problems:
        return [Reading(error=problems(tables.problems), label="tables")]
    out: list[Reading] = []
    patients = _index(tables.rows["patients.csv"], "patient_id", "patient", out)
    visits = _index(tables.rows["visits.csv"], "visit_no", "visit", out)
    children: dict[str, dict[str, list[CsvRow]]] = {v: {c: [] for c in CHILDREN} for v in visits}
    for child in CHILDREN:
        for row in tables.rows.get(f"{child}.csv", ()):
            vno = _key(row, "visit_no")
            if vno not in children:
                out.append(Reading(error=problems([(row.at("visit_no"), "not-found",
                    f"{row.at('visit_no')}: no visit {vno!r} in visits.csv")]), label=row.where()))
                continue
            row.get("visit_no")  # the join key is read
            children[vno][child].append(row)
    for vno, row in visits.items():
        out.append(_visit(row, patients, children[vno], tables.read, org))
    return out


def _visit(row: CsvRow, patients: dict[str, CsvRow], many: dict[str, list[CsvRow]],
           read: set[str], org: str | None) -> Reading:
    label = f"visit {_key(row, 'visit_no')} ({row.where()})"
    pid = _key(row, "patient_id")
    row.get("patient_id")
    patient = patients.get(pid)
    if patient is None:
        return Reading(error=problems([(row.at("patient_id"), "not-found",
            f"{row.at('patient_id')}: no patient {pid!r} in patients.csv")]), label=label)
    patient.get("patient_id")
    mapped = apply(MAPPING, Joined(row, {"patients": patient}, many), org=org, functions=FUNCTIONS)
    rows = [row, patient, *(r for rs in many.values() for r in rs)]
    return finish(mapped, label, lambda: (c for r in rows for c in r.present() if c not in read))


def _index(rows: list[CsvRow], key: str, what: str, out: list[Reading]) -> dict[str, CsvRow]:
    """Rows by their key column; a repeated key is that row's error (the first one stands)."""
    index: dict[str, CsvRow] = {}
    for row in rows:
        value = _key(row, key)
        if value in index:
            out.append(Reading(error=problems([(row.at(key), "duplicate",
                f"{row.at(key)}: {what} {value!r} appears again (first at row "
                f"{index[value].number})")]), label=row.where()))
        else:
            index[value] = row
    return index


def to_canonical(raw: bytes, org: str | None = None) -> OutpatientVisit:
    """The one visit of an export (a batch of several: use ``read_batch``)."""
    readings = read_batch(raw, org)
    for r in readings:
        if r.error is not None:
            raise r.error
    if len(readings) != 1:
        raise GatewayError.of(f"the export holds {len(readings)} visits; post it to /v1/batches",
                              "visits.csv", code="not-supported", error_code="2021", status=400)
    return readings[0].visit
