"""The one settings object. Environment variables prefixed ``GATEWAY_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    environment: str = Field("development", description="development | production")
    log_level: str = "INFO"
    log_json: bool = False
    data_dir: Path = Path("./var")
    redis_url: str | None = Field(None, description="external Redis; unset = embedded redis-server")

    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 2 * 1024 * 1024
    max_batch_bytes: int = Field(32 * 1024 * 1024, description="`POST /v1/batches` body limit")
    mllp_port: int | None = Field(None, description="HL7 v2 MLLP listener port (`serve --mllp-port`)")
    mllp_max_message_bytes: int = 1024 * 1024
    mllp_idle_timeout: float = 300.0
    processes: int = Field(1, ge=1, le=64, description="API worker processes (`serve --processes`)")
    ingest_batch: int = Field(
        32, ge=1, le=1024, description="submissions processed together at most, sharing their "
                                       "Redis round trips (1: one at a time)")
    ingest_in_flight: int = Field(
        2, ge=1, le=64, description="batches of a process in progress at once (while one waits "
                                    "for Redis, the next is computed)")

    validation_memo: bool = Field(
        True, validation_alias=AliasChoices("GATEWAY_VALIDATION_MEMO",
                                            "GATEWAY_VALIDATION_SHAPE_CACHE"),  # the old name
        description="the validator checks each distinct value once (same verdicts)")

    unmapped_policy: str = Field(
        "warn", pattern=r"^(warn|quarantine)(,[a-z0-9_-]+=(warn|quarantine))*$|^[a-z0-9_-]+=(warn|quarantine)(,[a-z0-9_-]+=(warn|quarantine))*$",
        description="codes no map translates, per destination: warn (send with a warning) or "
                    "quarantine (hold until mapped); e.g. 'warn' or 'warn,insurance=quarantine'")

    def policy_for(self, destination: str) -> str:
        """The unmapped-code policy of one destination ('*' = the default)."""
        default, named = "warn", {}
        for part in self.unmapped_policy.split(","):
            if "=" in part:
                name, _, value = part.partition("=")
                named[name] = value
            else:
                default = part
        return named.get(destination, default)

    regional_fhir_url: str | None = Field(None, description="FHIR base of the regional platform")
    delivery_shards: int = Field(8, ge=1, le=1024, description="streams per destination")
    delivery_timeout: float = 10.0
    retry_base: float = 0.5
    retry_cap: float = 60.0
    retry_max_age: float = Field(86400.0, description="seconds of retrying before a visit fails")
    lease_ttl: float = 15.0
    workers: bool = Field(True, description="run delivery workers inside `serve`")
    record_ttl: int = Field(30 * 86400, description="seconds a visit's tracking record is kept")

    v2_receiver_url: str | None = Field(
        None, description="an HL7 v2 receiver, mllp://host:port (outbound v2.5 messages)")
    v2_receiver_messages: str = Field("ADT^A04,ORU^R01,DFT^P03",
                                      description="messages sent to the v2 receiver per visit")
    v2_receiver_charset: str = "utf-8"

    insurance_url: str | None = Field(
        None, description="the NHSA interface endpoint of the insurance center (settlement)")
    insurance_timeout: float = Field(10.0, description="seconds to wait for the insurer")
    insurance_resolve_interval: float = Field(
        60.0, ge=0, description="seconds between background passes over unknown settlement "
                                "outcomes (0: only the next request or `gateway insurance resolve`)")
    insurance_admdvs: str = Field("110000", description="treatment-area admin division (GB/T 2260)")
    insurance_signer: str = Field("hmac", description="hmac | ecdsa | none | module:factory")
    insurance_sign_key: str = Field("development-only-key", description="the signer's key")

    def destinations(self) -> dict[str, str]:
        """Destination name → URL (FHIR base, or mllp:// for an HL7 v2 receiver)."""
        out = {}
        if self.regional_fhir_url:
            out["regional"] = self.regional_fhir_url.rstrip("/")
        if self.v2_receiver_url:
            out["v2"] = self.v2_receiver_url
        return out


@lru_cache
def get_settings() -> Settings:
    return Settings()
