"""Identity endpoints: the master patient index as FHIR (Patient read and search, $match,
an IHE PIXm cross-reference query), merges, and card status.

Reads need any valid key; merges, unmerges and card status changes need an ``admin`` key
(`gateway keys create --org ORG --role admin`).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Callable

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from gateway import errors
from gateway.identifiers import CardType, card_system, card_type_of
from gateway.identity.card_status import STATUSES
from gateway.render.fhir import CARD_TYPE
from terminology.translate import FHIR_GENDER, GBT_2261_1, translate

PATIENT_LINK_URL = "Patient/{}"


def patient_resource(person: dict[str, Any]) -> dict[str, Any]:
    """A person of the index as a FHIR Patient: every identifier, links for merges."""
    res: dict[str, Any] = {"resourceType": "Patient", "id": person["id"],
                           "active": person.get("status") != "merged"}
    idents = []
    for member in person.get("identifiers", []):
        system, _, value = member.partition("|")
        ident: dict[str, Any] = {"system": system, "value": value}
        ctype = card_type_of(system)
        if ctype:
            ident["type"] = {"coding": [{"system": CARD_TYPE, "code": ctype.value}]}
        idents.append(ident)
    if idents:
        res["identifier"] = idents
    if person.get("name"):
        res["name"] = [{"use": "official", "text": person["name"]}]
    if person.get("birth_date"):
        res["birthDate"] = person["birth_date"]
    if person.get("sex"):
        gender = translate(GBT_2261_1, person["sex"], FHIR_GENDER)
        if gender:
            res["gender"] = gender.code
    if person.get("phone"):
        res["telecom"] = [{"system": "phone", "value": person["phone"], "use": "mobile"}]
    links = []
    if person.get("merged_into"):
        links.append({"other": {"reference": PATIENT_LINK_URL.format(person["merged_into"])},
                      "type": "replaced-by"})
    for event in person.get("history", []):
        if event.get("event") == "absorbed":
            links.append({"other": {"reference": PATIENT_LINK_URL.format(event["source"])},
                          "type": "replaces"})
    if links:
        res["link"] = links
    return res


def _token(identifier: str, where: str) -> tuple[str, str]:
    system, sep, value = identifier.partition("|")
    if not sep or not system or not value:
        raise errors.invalid("use identifier=system|value", where)
    return system, value


class MergeRequest(BaseModel):
    source: str = Field(description="the person id that joins the survivor")
    reason: str = Field(min_length=1, max_length=500)


class UnmergeRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class CardStatusRequest(BaseModel):
    type: CardType
    value: str = Field(min_length=1, max_length=64)
    issuer: str | None = None
    status: str = Field(pattern="^(" + "|".join(STATUSES) + ")$")
    effective: date | None = None
    reason: str = Field("", max_length=500)


def router(ctx: Any, authenticate: Callable[[Request], Any], respond: Callable) -> APIRouter:
    api = APIRouter()
    empi, cards = ctx.empi, ctx.card_status

    def admin(request: Request) -> Any:
        sender = authenticate(request)
        if sender.role != "admin":
            raise errors.forbidden("this operation needs an admin key")
        return sender

    def person_or_404(pid: str) -> dict[str, Any]:
        person = empi.person(pid)
        if person is None:
            raise errors.not_found(f"no person {pid!r} in the master patient index")
        return person

    @api.get("/fhir/Patient", tags=["identity"], summary="Find the person behind any identifier")
    def search(request: Request, identifier: str) -> Any:
        authenticate(request)
        system, value = _token(identifier, "identifier")
        pid = empi.lookup(system, value)
        entries = []
        if pid:
            entries.append({"fullUrl": f"Patient/{pid}", "resource": patient_resource(
                person_or_404(pid)), "search": {"mode": "match"}})
        return respond({"resourceType": "Bundle", "type": "searchset", "total": len(entries),
                        "entry": entries}, fhir=True)

    @api.get("/fhir/Patient/$ihe-pix", tags=["identity"],
             summary="IHE PIXm: every identifier of the person behind one identifier")
    def pix(request: Request, sourceIdentifier: str, targetSystem: str | None = None) -> Any:  # noqa: N803
        authenticate(request)
        system, value = _token(sourceIdentifier, "sourceIdentifier")
        pid = empi.lookup(system, value)
        if pid is None:
            raise errors.not_found(f"no person has the identifier {system}|{value}")
        params = []
        for member in person_or_404(pid)["identifiers"]:
            s, _, v = member.partition("|")
            if targetSystem and s != targetSystem:
                continue
            params.append({"name": "targetIdentifier", "valueIdentifier": {"system": s, "value": v}})
        params.append({"name": "targetId", "valueReference": {"reference": f"Patient/{pid}"}})
        return respond({"resourceType": "Parameters", "parameter": params}, fhir=True)

    @api.post("/fhir/Patient/$match", tags=["identity"],
              summary="Scored candidates from demographics (never a link)")
    async def match(request: Request) -> Any:
        authenticate(request)
        body = await request.json()
        resource = body
        if body.get("resourceType") == "Parameters":
            resource = next((p.get("resource") for p in body.get("parameter", [])
                             if p.get("name") == "resource"), None) or {}
        if resource.get("resourceType") != "Patient":
            raise errors.invalid("send a Patient (or Parameters with a 'resource' Patient)",
                                 "resourceType")
        name = ((resource.get("name") or [{}])[0]).get("text")
        phone = next((t.get("value") for t in resource.get("telecom", []) if t.get("system") == "phone"), None)
        gender = resource.get("gender")
        sex = translate(FHIR_GENDER, gender, GBT_2261_1).code if gender and translate(
            FHIR_GENDER, gender, GBT_2261_1) else None
        found = empi.match(name=name, birth_date=resource.get("birthDate"), sex=sex, phone=phone)
        entries = [{
            "fullUrl": f"Patient/{c.person_id}",
            "resource": patient_resource(person_or_404(c.person_id)),
            "search": {"mode": "match", "score": c.score, "extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/match-grade",
                "valueCode": c.grade}]},
        } for c in found]
        return respond({"resourceType": "Bundle", "type": "searchset", "total": len(entries),
                        "entry": entries}, fhir=True)

    @api.get("/fhir/Patient/{pid}", tags=["identity"], summary="A person of the index")
    def read(request: Request, pid: str) -> Any:
        authenticate(request)
        return respond(patient_resource(person_or_404(pid)), fhir=True)

    @api.post("/v1/persons/{pid}/merge", tags=["identity"],
              summary="Merge another person into this one (admin)")
    def merge(request: Request, pid: str, body: MergeRequest) -> Any:
        sender = admin(request)
        from gateway.identity.empi import EmpiError

        try:
            return respond(empi.merge(pid, body.source, who=sender.org, why=body.reason))
        except EmpiError as exc:
            raise errors.GatewayError.of(str(exc), "source", code="conflict", status=409) from None

    @api.post("/v1/persons/{pid}/unmerge", tags=["identity"],
              summary="Undo the merge of this person (admin)")
    def unmerge(request: Request, pid: str, body: UnmergeRequest) -> Any:
        sender = admin(request)
        from gateway.identity.empi import EmpiError

        try:
            return respond(empi.unmerge(pid, who=sender.org, why=body.reason))
        except EmpiError as exc:
            raise errors.GatewayError.of(str(exc), code="conflict", status=409) from None

    @api.get("/v1/persons/{pid}/history", tags=["identity"], summary="Who linked, merged, when, why")
    def history(request: Request, pid: str) -> Any:
        authenticate(request)
        return respond(person_or_404(pid)["history"])

    @api.put("/v1/cards/status", tags=["identity"], summary="Set a card's status (admin)")
    def set_status(request: Request, body: CardStatusRequest) -> Any:
        sender = admin(request)
        try:
            system = card_system(body.type, body.issuer)
        except ValueError as exc:
            raise errors.invalid(str(exc), "issuer") from None
        st = cards.set(system, body.value, body.status, effective=body.effective,
                       reason=body.reason, who=sender.org)
        return respond({"system": system, "value": body.value, "status": st.status,
                        "effective": st.effective, "reason": st.reason})

    return api
