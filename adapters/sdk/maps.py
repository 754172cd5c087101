"""An adapter's own code tables (``maps/<name>.csv`` beside the module, the columns of
``gateway terminology import``), as the hospital maps the translate stage searches —
for checking an adapter offline. In the running gateway a hospital imports them with
``gateway terminology import --org ORG --map NAME maps/NAME.csv``."""

from __future__ import annotations

from pathlib import Path

from terminology.local_maps import map_url, parse_csv
from terminology.translate import Translation


class AdapterMaps:
    """Implements what the translate stage asks of ``ctx.local_maps``."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._tables: dict[tuple[str, str], dict[tuple[str, str], Translation]] = {}
        self.gaps: list[tuple[str, str, str, str]] = []

    def _table(self, org: str, name: str) -> dict[tuple[str, str], Translation]:
        if (org, name) not in self._tables:
            path = self.directory / f"{name}.csv"
            table = {}
            if path.exists():
                for row in parse_csv(path.read_text(encoding="utf-8-sig"), org, name):
                    if row["equivalence"] != "unmatched":
                        table[(row["source_system"], row["source_code"])] = Translation(
                            row["target_code"], row["equivalence"], map_url(org, name), "adapter")
            self._tables[(org, name)] = table
        return self._tables[(org, name)]

    def translate(self, org: str, name: str, system: str, code: str) -> Translation | None:
        return self._table(org, name).get((system, code))

    def record_gap(self, org: str, name: str, system: str, code: str) -> None:
        self.gaps.append((org, name, system, code))
