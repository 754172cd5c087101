"""Translate: codes sent in local or other systems → national codes, through ConceptMaps.

First cut: the patient's sex (any system with a map to GB/T 2261.1, or GB/T 2261.1
itself) → GB/T 2261.1 and FHIR administrative-gender. An unmapped code is reported,
never guessed.
"""

from __future__ import annotations

from gateway import errors
from gateway.envelope import Envelope, Translated
from terminology.translate import FHIR_GENDER, GBT_2261_1, translate


def run(env: Envelope, ctx) -> Envelope:
    if env.visit is None:  # an identity-only message (ADT^A40): nothing to translate or render
        return env
    sex = env.visit.patient.sex
    to_gb = translate(sex.system, sex.code, GBT_2261_1)
    if to_gb is None:
        raise errors.GatewayError.of(
            f"sex code {sex.code!r} of system {sex.system!r} has no map to GB/T 2261.1",
            "patient.sex.code", code="code-invalid", error_code="4001", status=422)
    gender = translate(GBT_2261_1, to_gb.code, FHIR_GENDER)
    versions = tuple(sorted({f"{t.map_url}|{t.map_version}" for t in (to_gb, gender) if t and t.map_url}))
    return env.with_(translated=Translated(gender=gender.code, sex_gb=to_gb.code, map_versions=versions))
