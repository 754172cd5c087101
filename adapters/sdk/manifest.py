"""An adapter's manifest: who wrote it, what it reads, how to reach its maintainers."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

FORMATS = ("hl7v2", "xml", "csv", "json")
_ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class Manifest(BaseModel):
    """Declared once per adapter module as ``MANIFEST``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="lower_snake_case, unique; `?adapter=ID`, `gateway adapters check ID`")
    vendor: str = Field(min_length=1, description="the HIS vendor or product")
    formats: tuple[str, ...] = Field(min_length=1, description=f"input formats: {', '.join(FORMATS)}")
    versions: tuple[str, ...] = Field(default=(), description="dialect / product versions read")
    contact: str = Field(default="", description="who maintains the adapter")
    description: str = ""
    batch: bool = Field(False, description="one input holds many visits (POST /v1/batches)")
    content_types: tuple[str, ...] = Field(default=(), description="HTTP content types it reads")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("an adapter id is lower_snake_case: a letter, then letters, "
                             "digits or _ (2-40 characters)")
        return value

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in value if f not in FORMATS]
        if unknown:
            raise ValueError(f"unknown format(s) {unknown}; one of {', '.join(FORMATS)}")
        return value
