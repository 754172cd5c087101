import json, sys
BASE="https://yikatong.org/fhir"
SD=f"{BASE}/StructureDefinition/"
CARD_TYPE=f"{BASE}/CodeSystem/card-type"
W=(7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2)
S="(" + " + ".join(f"value.substring({i},1).toInteger()*{w}" for i,w in enumerate(W)) + ")"
C=f"((12 - ({S} mod 11)) mod 11)"
PAT_CN_1=f"value.empty() or (value.matches('^[0-9]{{17}}[0-9X]$') and iif({C} = 10, 'X', {C}.toString()) = value.substring(17,1))"

def sd(id_, type_, title, desc, elements, base=None, kind="resource", ctx=None):
    out={"resourceType":"StructureDefinition","id":id_,"url":SD+id_,"version":"0.1.0",
         "name":"".join(p.capitalize() for p in id_.split("-")),"title":title,"status":"draft",
         "publisher":"一卡通 interoperability gateway","description":desc,"fhirVersion":"4.0.1",
         "kind":kind,"abstract":False}
    if ctx: out["context"]=ctx
    out.update({"type":type_,"baseDefinition":base or f"http://hl7.org/fhir/StructureDefinition/{type_}",
         "derivation":"constraint","differential":{"element":elements}})
    return out

def el(id_, **kw):
    path=".".join(p.split(":")[0] for p in id_.split("."))
    e={"id":id_,"path":path}
    if ":" in id_.split(".")[-1]:
        e["sliceName"]=id_.split(".")[-1].split(":")[1]
    e.update(kw)
    return e

def con(key, human, expr, severity="error"):
    return {"key":key,"severity":severity,"human":human,"expression":expr,"source":None}

def card_slice(name, code, system, extra_value=None, extra_cons=None, mx="1"):
    out=[el(f"Patient.identifier:{name}", min=0, max=mx, **({"constraint":extra_cons} if extra_cons else {})),
         el(f"Patient.identifier:{name}.type", min=1, patternCodeableConcept={"coding":[{"system":CARD_TYPE,"code":code}]},
            binding={"strength":"required","valueSet":f"{BASE}/ValueSet/card-type"})]
    if system:
        out.append(el(f"Patient.identifier:{name}.system", min=1, fixedUri=system))
    else:
        out.append(el(f"Patient.identifier:{name}.system", min=1))
    out.append(el(f"Patient.identifier:{name}.value", min=1))
    return out

def fix(d):
    for e in d["differential"]["element"]:
        for c in e.get("constraint",[]):
            c["source"]=d["url"]
    return d

profiles=[]
pat=[el("Patient", constraint=[con("pat-cn-2","at least one card identifier (a type from "+CARD_TYPE+")",
        f"identifier.where(type.coding.where(system = '{CARD_TYPE}').exists()).exists()")]),
     el("Patient.identifier", min=1, slicing={"discriminator":[{"type":"pattern","path":"type"}],"rules":"open",
        "description":"cards by their card type; the card type decides the system"}),
     el("Patient.identifier.type", binding={"strength":"extensible","valueSet":f"{BASE}/ValueSet/card-type"}),
     *card_slice("citizenId","citizen_id","urn:oid:2.16.156.10011.1.3",
                 extra_cons=[con("pat-cn-1","invalid citizen ID check digit",PAT_CN_1)]),
     *card_slice("sscCardNo","ssc_card_no",f"{BASE}/sid/ssc-card-no"),
     *card_slice("sscCardId","ssc_card_id",f"{BASE}/sid/ssc-card-id"),
     *card_slice("healthCard","health_card",f"{BASE}/sid/resident-health-card"),
     *card_slice("hospitalCard","hospital_card",None, mx="*",
                 extra_cons=[con("pat-cn-3","a hospital card's system is scoped to its issuer ("+BASE+"/sid/org/{org}/card)",
                                 f"system.startsWith('{BASE}/sid/org/') and system.endsWith('/card')")]),
     el("Patient.name", min=1), el("Patient.gender", min=1), el("Patient.birthDate", mustSupport=True)]
# the citizen ID check sits on the slice root's constraint: move value checks there
profiles.append(sd("yikatong-patient","Patient","一卡通 Patient","A patient identified by card: citizen ID (GB 11643, with its check digit), social security card, resident health card and hospital cards as identifier slices by card type, at least one of them; name and gender required.",pat))

org=[el("Organization.identifier", min=1, slicing={"discriminator":[{"type":"value","path":"system"}],"rules":"open"}),
     el("Organization.identifier:orgCode", min=1, max="1"),
     el("Organization.identifier:orgCode.system", min=1, fixedUri="urn:oid:2.16.156.10011.1.5"),
     el("Organization.identifier:orgCode.value", min=1),
     el("Organization.name", min=1)]
profiles.append(sd("yikatong-organization","Organization","一卡通 Organization","A hospital or other organisation, identified by its organisation code (urn:oid:2.16.156.10011.1.5).",org))

enc=[el("Encounter.class", binding={"strength":"required","valueSet":f"{BASE}/ValueSet/yikatong-encounter-class"}),
     el("Encounter.subject", min=1, type=[{"code":"Reference","targetProfile":["http://hl7.org/fhir/StructureDefinition/Patient"]}]),
     el("Encounter.period", min=1), el("Encounter.period.start", min=1),
     el("Encounter.serviceProvider", min=1, type=[{"code":"Reference","targetProfile":[SD+"yikatong-organization"]}])]
profiles.append(sd("yikatong-encounter","Encounter","一卡通 outpatient Encounter","An outpatient (AMB) or emergency (EMER) visit: the patient, the start of the visit and the organisation providing it (which carries its organisation code) are required.",enc))

cond=[el("Condition.code", min=1, binding={"strength":"extensible","valueSet":f"{BASE}/ValueSet/icd10-cn"}),
      el("Condition.subject", type=[{"code":"Reference","targetProfile":["http://hl7.org/fhir/StructureDefinition/Patient"]}]),
      el("Condition.encounter", min=1)]
profiles.append(sd("yikatong-condition","Condition","一卡通 diagnosis Condition","A diagnosis (or symptom) made in a visit: a code (ICD-10 as used in China, extensible: a hospital's local code may stand beside or, when unmapped, instead of it) and the visit's Encounter are required.",cond))

mr=[el("MedicationRequest.medication[x]", type=[{"code":"CodeableConcept"}]),
    el("MedicationRequest.subject", type=[{"code":"Reference","targetProfile":["http://hl7.org/fhir/StructureDefinition/Patient"]}]),
    el("MedicationRequest.encounter", min=1), el("MedicationRequest.authoredOn", min=1), el("MedicationRequest.requester", min=1)]
profiles.append(sd("yikatong-medicationrequest","MedicationRequest","一卡通 prescription","A prescription line of a visit: the drug as a code, the visit, when and by whom.",mr))

sr=[el("ServiceRequest.category", min=1), el("ServiceRequest.code", min=1),
    el("ServiceRequest.subject", type=[{"code":"Reference","targetProfile":["http://hl7.org/fhir/StructureDefinition/Patient"]}]),
    el("ServiceRequest.encounter", min=1), el("ServiceRequest.authoredOn", min=1)]
profiles.append(sd("yikatong-servicerequest","ServiceRequest","一卡通 exam or lab order","An exam or lab order of a visit.",sr))

obs=[el("Observation.category", min=1, slicing={"discriminator":[{"type":"pattern","path":"$this"}],"rules":"open"}),
     el("Observation.category:laboratory", min=1, max="1", patternCodeableConcept={"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}),
     el("Observation.subject", min=1, type=[{"code":"Reference","targetProfile":["http://hl7.org/fhir/StructureDefinition/Patient"]}]),
     el("Observation.encounter", min=1),
     el("Observation.effective[x]", min=1),
     el("Observation.value[x]", min=1, type=[{"code":"Quantity"},{"code":"string"}],
        constraint=[con("obs-cn-1","a numeric result should carry its unit (dimensionless results such as pH or specific gravity have none)","($this is Quantity) implies unit.exists()", severity="warning")]),
     el("Observation.referenceRange", mustSupport=True)]
profiles.append(sd("yikatong-observation","Observation","一卡通 lab result","A laboratory result: a value (a quantity with its unit, or text), with its reference range when the laboratory gives one.",obs))

ext=lambda name: f"{SD}{name}"
ci=[el("ChargeItem.extension", slicing={"discriminator":[{"type":"value","path":"url"}],"rules":"open"}),
    el("ChargeItem.extension:unitPrice", min=1, max="1", type=[{"code":"Extension","profile":[ext("chargeitem-unit-price")]}]),
    el("ChargeItem.extension:category", min=1, max="1", type=[{"code":"Extension","profile":[ext("chargeitem-category")]}]),
    el("ChargeItem.extension:insuranceClass", min=0, max="1", type=[{"code":"Extension","profile":[ext("chargeitem-insurance-class")]}]),
    el("ChargeItem.code", min=1),
    el("ChargeItem.subject", type=[{"code":"Reference","targetProfile":["http://hl7.org/fhir/StructureDefinition/Patient"]}]),
    el("ChargeItem.context", min=1, type=[{"code":"Reference","targetProfile":["http://hl7.org/fhir/StructureDefinition/Encounter"]}]),
    el("ChargeItem.occurrence[x]", min=1), el("ChargeItem.quantity", min=1), el("ChargeItem.priceOverride", min=1)]
profiles.append(sd("yikatong-chargeitem","ChargeItem","一卡通 fee item","A fee line of a visit, with its NHSA charge category (医疗收费项目类别), its insurance class (收费项目等级) and unit price as extensions.",ci))

def extension(name, title, desc, vtype, binding=None):
    v=el("Extension.value[x]", min=1, type=[{"code":vtype}])
    if binding: v["binding"]={"strength":"required","valueSet":binding}
    return sd(name,"Extension",title,desc,[el("Extension.extension", max="0"), el("Extension.url", fixedUri=SD+name), v],
              kind="complex-type", ctx=[{"type":"element","expression":"ChargeItem"}])
profiles.append(extension("chargeitem-category","ChargeItem NHSA charge category","医疗收费项目类别 (NHSA med_chrgitm_type).","Coding",f"{BASE}/ValueSet/nhsa-med-chrgitm-type"))
profiles.append(extension("chargeitem-insurance-class","ChargeItem insurance class","收费项目等级 (NHSA chrgitm_lv: 甲/乙/丙类).","Coding",f"{BASE}/ValueSet/nhsa-chrgitm-lv"))
profiles.append(extension("chargeitem-unit-price","ChargeItem unit price","单价: the unit price of a fee item.","Money"))

entry_profiles=[SD+p for p in ("yikatong-patient","yikatong-organization","yikatong-encounter","yikatong-condition","yikatong-medicationrequest","yikatong-servicerequest","yikatong-observation","yikatong-chargeitem")]
b=[el("Bundle", constraint=[con("bdl-cn-1","a visit Bundle carries exactly one Patient","entry.resource.where($this is Patient).count() = 1")]),
   el("Bundle.type", fixedCode="transaction"),
   el("Bundle.entry", min=1), el("Bundle.entry.fullUrl", min=1),
   el("Bundle.entry.resource", min=1, type=[{"code":"Resource","profile":entry_profiles}]),
   el("Bundle.entry.request", min=1)]
profiles.append(sd("yikatong-visit-bundle","Bundle","一卡通 outpatient visit Bundle","One outpatient visit as a transaction Bundle: exactly one Patient; each entry's resource conforms to the project's profile for its type (core R4 for the others).",b))

for p in profiles:
    fix(p)
    for e in p["differential"]["element"]:
        for c in e.get("constraint",[]): c["source"]=p["url"]
    json.dump(p, open(f"{sys.argv[1]}/StructureDefinition-{p['id']}.json","w"), ensure_ascii=False, indent=2)
    open(f"{sys.argv[1]}/StructureDefinition-{p['id']}.json","a").write("\n")

vs={"resourceType":"ValueSet","id":"yikatong-encounter-class","url":f"{BASE}/ValueSet/yikatong-encounter-class","version":"0.1.0",
    "name":"YikatongEncounterClass","title":"一卡通 visit classes: outpatient and emergency","status":"draft",
    "description":"The Encounter.class codes of an outpatient record: ambulatory (门诊) and emergency (急诊).",
    "compose":{"include":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","concept":[{"code":"AMB","display":"ambulatory"},{"code":"EMER","display":"emergency"}]}]}}
json.dump(vs, open(f"{sys.argv[1]}/ValueSet-yikatong-encounter-class.json","w"), ensure_ascii=False, indent=2)
open(f"{sys.argv[1]}/ValueSet-yikatong-encounter-class.json","a").write("\n")
print(len(PAT_CN_1))
