"""Table exports (database views as CSV files, sent together as one zip): reading them
into rows that name their file, row and column, with every problem at its position.

Row numbers count the header as row 1, as a spreadsheet shows them. Files are UTF-8 (a
byte-order mark is fine) or, failing that, GB 18030 (which covers GBK).
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field

from adapters.sdk.sources import CsvRow

MAX_FILES = 50


@dataclass
class Tables:
    rows: dict[str, list[CsvRow]] = field(default_factory=dict)  # "fees.csv" → its rows
    read: set[str] = field(default_factory=set)  # cells read, "fees.csv row 3 column amount"
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (where, code, text)


def unzip(raw: bytes) -> dict[str, bytes]:
    """The files of a zip by base name; not a zip → ValueError."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise ValueError("the body is not a zip of table files (patients.csv, visits.csv, ...)") from None
    out = {}
    with zf:
        for info in zf.infolist()[:MAX_FILES]:
            if not info.is_dir():
                out[info.filename.rsplit("/", 1)[-1]] = zf.read(info)
    return out


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def read_tables(files: dict[str, bytes], columns: dict[str, tuple[set[str], bool]]) -> Tables:
    """``columns``: file name → (columns it must have, whether the file itself is required)."""
    out = Tables()
    for name, (required_cols, required) in columns.items():
        if name not in files:
            if required:
                out.problems.append((name, "required", f"{name}: the file is missing"))
            continue
        reader = csv.reader(io.StringIO(_decode(files[name]), newline=""))
        try:
            header = [h.strip() for h in next(reader, [])]
        except csv.Error as exc:
            out.problems.append((f"{name} row 1", "structure", f"{name} row 1: {exc}"))
            continue
        missing = sorted(required_cols - set(header))
        for col in missing:
            out.problems.append((f"{name} row 1 column {col}", "required",
                                 f"{name} row 1: the column {col!r} is missing"))
        if missing:
            continue
        rows: list[CsvRow] = []
        number = 1
        try:
            for number, values in enumerate(reader, start=2):
                if not any(v.strip() for v in values):
                    continue
                if len(values) > len(header):
                    out.problems.append((f"{name} row {number}", "structure",
                                         f"{name} row {number}: {len(values)} values for "
                                         f"{len(header)} columns"))
                    continue
                rows.append(CsvRow(name, number, dict(zip(header, values, strict=False)), out.read))
        except csv.Error as exc:
            out.problems.append((f"{name} row {number + 1}", "structure",
                                 f"{name} row {number + 1}: {exc}"))
        out.rows[name] = rows
    return out
