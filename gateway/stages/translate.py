"""Translate: codes sent in local or other systems → national codes, through ConceptMaps —
the sending hospital's own maps first (``terminology/local_maps.py``), then the national
ones (``terminology/conceptmaps/``). Never a guess: an unmapped code is reported.

* sex → GB/T 2261.1 and FHIR gender: unmapped is an error (the Patient needs a gender);
* fee items and drugs without a national code → NHSA list codes; diagnoses in a local
  system → ICD-10: unmapped codes follow the unmapped-code policy (``warn``: the visit goes
  on with a warning; ``quarantine``: it is held as "needs-mapping" until the map has the
  code) and are counted per hospital (``gateway terminology gaps``).
"""

from __future__ import annotations


from gateway import errors
from gateway.envelope import Envelope, Translated
from gateway.render.fhir import ICD10_ALIASES, org_systems
from terminology.local_maps import hospital_first
from terminology.translate import FHIR_GENDER, GBT_2261_1, Translation, translate


def run(env: Envelope, ctx) -> Envelope:
    if env.visit is None:  # an identity-only message (ADT^A40): nothing to translate or render
        return env
    visit, org = env.visit, env.visit.org.code
    local = ctx.local_maps
    used: set[str] = set()
    gaps: list[tuple[str, str, str]] = []

    def look(name: str, system: str, code: str, national_target: str | None = None):
        t = hospital_first(local, org, name, system, code, national_target)
        if t is not None and t.map_url:
            used.add(f"{t.map_url}|{t.map_version}")
        return t

    def missing(name: str, system: str, code: str, where: str, what: str) -> dict:
        gaps.append((name, system, code))  # counted when the visit is committed (route)
        return errors.issue(
            f"{what} {code!r} ({system}) has no map to a national code in {org}'s "
            f"'{name}' map", where, code="code-invalid", severity="warning", error_code="4002")

    sex = visit.patient.sex
    to_gb = look("sex", sex.system, sex.code, GBT_2261_1)
    if to_gb is None:
        if local is not None:
            local.record_gap(org, "sex", sex.system, sex.code)
        raise errors.GatewayError.of(
            f"sex code {sex.code!r} of system {sex.system!r} has no map to GB/T 2261.1 "
            f"(import one: gateway terminology import --org {org} --map sex FILE.csv)",
            "patient.sex.code", code="code-invalid", error_code="4001", status=422)
    gender: Translation | None = translate(GBT_2261_1, to_gb.code, FHIR_GENDER)
    if gender and gender.map_url:
        used.add(f"{gender.map_url}|{gender.map_version}")

    unmapped, fee_codes, drug_codes, dx_codes = [], {}, {}, {}
    if local is not None:
        systems = org_systems(org)  # the hospital's own code systems, made once
        fee_system = systems["fee-item"]
        for i, fee in enumerate(visit.fees):
            if fee.national_code:
                continue
            t = look("fee-item", fee_system, fee.item_code)
            if t:
                fee_codes[fee.line_no] = t.code
            else:
                unmapped.append(missing("fee-item", fee_system, fee.item_code,
                                        f"fees[{i}].item_code", "fee item"))
        drug_system = systems["drug"]
        for i, drug in enumerate(visit.drugs):
            t = look("drug", drug_system, drug.code)
            if t:
                drug_codes[drug.order_no] = t.code
            else:
                unmapped.append(missing("drug", drug_system, drug.code, f"drugs[{i}].code", "drug"))
        for i, dx in enumerate(visit.diagnoses):
            if dx.system in ICD10_ALIASES:
                continue
            t = look("diagnosis", dx.system, dx.code)
            if t:
                dx_codes[dx.code] = t.code
            else:
                unmapped.append(missing("diagnosis", dx.system, dx.code,
                                        f"diagnoses[{i}].code", "diagnosis"))
    return env.with_(translated=Translated(
        gender.code, to_gb.code, tuple(sorted(used)), fee_codes, drug_codes, dx_codes,
        tuple(unmapped), tuple(gaps)))
