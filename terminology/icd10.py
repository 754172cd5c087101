"""Loading a full ICD-10 table (China's clinical or NHSA edition) from a CSV the user
supplies — the national editions are not openly licensed, so only a fragment ships.

    code,name[,name_en]
    A00.000x001,古典生物型霍乱,Cholera due to Vibrio cholerae 01, biovar cholerae

The table becomes a complete CodeSystem (url ``urn:oid:2.16.156.10011.2.3.3.11.1``) in
``<data dir>/terminology/codesystems/``, which takes the place of the shipped fragment.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from gateway.identifiers import ICD10
from terminology.local_maps import ImportError_

CODE = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Za-z]{1,12})?$")


def parse(text: str, edition: str) -> dict[str, Any]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    if not {"code", "name"} <= set(header):
        raise ImportError_(["line 1: the columns must include code and name"])
    problems, concepts, seen = [], [], {}
    for line, row in enumerate(reader, start=2):
        code, name = (row.get("code") or "").strip(), (row.get("name") or "").strip()
        if not CODE.match(code):
            problems.append(f"line {line}: {code!r} is not an ICD-10 code (e.g. J06.900, A00.000x001)")
        if not name:
            problems.append(f"line {line}: name is empty")
        if code in seen:
            problems.append(f"line {line}: {code} appears again (first on line {seen[code]})")
        seen[code] = line
        concept: dict[str, Any] = {"code": code, "display": name}
        if (row.get("name_en") or "").strip():
            concept["designation"] = [{"language": "en", "value": row["name_en"].strip()}]
        concepts.append(concept)
    if not concepts and not problems:
        problems.append("the file has no rows")
    if problems:
        raise ImportError_(problems)
    concepts.sort(key=lambda c: c["code"])
    return {
        "resourceType": "CodeSystem", "id": "icd10-cn", "url": ICD10, "version": edition,
        "name": "icd10_cn", "title": f"ICD-10 疾病分类与代码 ({edition})", "status": "active",
        "description": f"ICD-10 as used in China, edition {edition}, loaded from a file the user supplied.",
        "caseSensitive": True, "content": "complete", "count": len(concepts),
        "valueSet": "https://yikatong.org/fhir/ValueSet/icd10-cn", "concept": concepts,
    }


def install(text: str, edition: str, data_dir: Path) -> Path:
    cs = parse(text, edition)
    target = Path(data_dir) / "terminology" / "codesystems"
    target.mkdir(parents=True, exist_ok=True)
    path = target / "icd10-cn.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cs, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
