"""Settings of the REST API and job submission (prefix ``HABITUS_``), validated at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from habitus.jobs import DicomNode
from service.apikeys import ApiKeySetting, check_key_names

GIB = 1024**3


def default_spool_dir() -> Path:
    return Path.home() / ".local" / "share" / "habitus" / "spool"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HABITUS_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    spool_dir: Path = Field(default_factory=default_spool_dir)
    # API keys: name -> key (all scopes) or {"sha256": ..., "scopes": [...]} (service.apikeys).
    # The name is logged and owns the jobs the key submits, never the key.
    api_keys: dict[str, ApiKeySetting] = Field(default_factory=dict)
    audit_log_file: Path | None = None  # audit lines go here as well as to stderr
    retention_days: float = Field(default=0.0, ge=0)  # finished jobs kept; 0: for ever
    retention_disk_percent: float = Field(default=0.0, ge=0, le=100)  # spool use; 0: no limit
    retention_interval_s: float = Field(default=3600.0, gt=0)  # how often the sweeper runs
    allow_anonymous: bool = False  # serve without keys (a closed test network only)
    metrics_require_key: bool = False  # /metrics carries counts only, no patient data
    max_upload_bytes: int = 4 * GIB  # request body
    max_unpacked_bytes: int = 8 * GIB  # total size of a zip's entries, unpacked
    max_upload_files: int = 10_000  # files in one upload (zip entries or parts)
    max_zip_ratio: float = 200.0  # unpacked / packed size of a zip; deflate tops out near 1030
    upload_body_timeout_s: float = 1800.0  # the whole request body must arrive within this
    upload_idle_timeout_s: float = 30.0  # ... and never pause longer than this
    min_free_bytes: int = 2 * GIB  # /readyz fails below this free space in the spool
    dicom_nodes: list[DicomNode] = Field(default_factory=list)  # HABITUS_DICOM_NODES (JSON)
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    @field_validator("api_keys")
    @classmethod
    def _owner_names(cls, keys: dict[str, ApiKeySetting]) -> dict[str, ApiKeySetting]:
        check_key_names(keys)
        return keys

    @field_validator("dicom_nodes")
    @classmethod
    def _unique_node_names(cls, nodes: list[DicomNode]) -> list[DicomNode]:
        names = [n.name for n in nodes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"DICOM node names must be unique; repeated: {duplicates}")
        return nodes

    @property
    def jobs_dir(self) -> Path:
        return self.spool_dir / "jobs"

    @property
    def uploads_dir(self) -> Path:
        return self.spool_dir / "uploads"

    def node(self, name: str) -> DicomNode | None:
        return next((n for n in self.dicom_nodes if n.name == name), None)


@lru_cache(maxsize=1)
def get_settings() -> ServiceSettings:
    """The settings of this process, read once; tests pass their own to ``create_app``."""
    return ServiceSettings()
