"""Settings of the DICOM listener (prefix ``HABITUS_LISTENER_``), read once at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CT_MODALITIES: tuple[str, ...] = ("CT",)


class ListenerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HABITUS_LISTENER_", extra="ignore")

    ae_title: str = "HABITUS"
    host: str = "0.0.0.0"  # address the C-STORE SCP binds to
    port: int = Field(default=11112, ge=0, le=65535)  # 0: pick a free port (tests)
    # Where received instances wait for their jobs; default: <HABITUS_SPOOL_DIR>/dicom.
    spool_dir: Path | None = None

    # Who may send. Calling AE titles accepted besides those of the known PACS nodes
    # (HABITUS_DICOM_NODES); "*" accepts any AE title.
    allowed_ae_titles: list[str] = Field(default_factory=list)
    # A calling AE title that belongs to a known node must also come from that node's host
    # (compared as IP addresses after resolving the node's host name): an AE title alone is
    # no credential. false only where nodes reach the listener through address translation.
    check_node_hosts: bool = True
    # Called AE title must equal ae_title (a peer that addresses another node is refused).
    require_called_ae_title: bool = True

    # Which instances are kept: the modalities (from the SOP class) stored in the spool.
    # CT by default; add "PT" to keep the PET of PET-CT studies for the series chooser.
    stored_modalities: list[str] = Field(default_factory=lambda: list(CT_MODALITIES))

    # Each instance (and its name in the spool) is synced to disk before it is acknowledged,
    # so an acknowledged instance survives a crash or power loss. false skips the syncs:
    # faster where the disk's flushes are slow, at the risk of losing acknowledged instances.
    fsync: bool = True

    # A study's new instances are offered to the series chooser once none has arrived for
    # this many seconds ...
    quiet_period_s: float = Field(default=10.0, gt=0)
    # ... or for this many, once every association that sent them has ended (a sender that
    # releases its association after a push has usually sent everything).
    quiet_after_release_s: float = Field(default=2.0, gt=0)
    # How often the completion thread looks for quiet studies.
    poll_interval_s: float = Field(default=0.25, gt=0)
    # A submission that fails for a reason other than the input (e.g. Redis down) is
    # retried after this many seconds.
    submit_retry_s: float = Field(default=15.0, gt=0)
    # A batch refused for its content (too few slices, say) keeps its instances this long:
    # more of the same study arriving meanwhile is submitted together with them. Then the
    # completion thread removes them (their record stays).
    keep_refused_s: float = Field(default=86400.0, ge=0)

    max_associations: int = Field(default=32, ge=1)
    # Largest PDU accepted, announced to peers; a peer announcing a larger one is cut off
    # before any buffer is sized by it. 0: no limit (buffers still grow only as bytes arrive).
    max_pdu_bytes: int = Field(default=1024 * 1024, ge=0)
    network_timeout_s: float = Field(default=60.0, gt=0)
    acse_timeout_s: float = Field(default=30.0, gt=0)
    dimse_timeout_s: float = Field(default=60.0, gt=0)

    # DICOM TLS (PS3.15 B.1): a certificate and its key turn it on; a CA file besides
    # makes the listener require client certificates signed by that CA.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_ca_file: Path | None = None

    @field_validator("ae_title")
    @classmethod
    def _check_ae_title(cls, value: str) -> str:
        value = value.strip()
        if not 1 <= len(value) <= 16 or "\\" in value:
            raise ValueError(
                f"an AE title has 1 to 16 characters and no backslash; found {value!r}"
            )
        return value

    @field_validator("stored_modalities")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return [m.strip().upper() for m in value if m.strip()]

    @model_validator(mode="after")
    def _tls_complete(self) -> ListenerSettings:
        # half a TLS configuration would otherwise run as plain DICOM without a word
        given = {
            "HABITUS_LISTENER_TLS_CERT_FILE": self.tls_cert_file,
            "HABITUS_LISTENER_TLS_KEY_FILE": self.tls_key_file,
            "HABITUS_LISTENER_TLS_CA_FILE": self.tls_ca_file,
        }
        if any(given.values()) and not self.tls_enabled:
            missing = [name for name, value in list(given.items())[:2] if value is None]
            present = [name for name, value in given.items() if value is not None]
            raise ValueError(
                f"DICOM TLS needs a certificate and its key: {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} unset, while {', '.join(present)} "
                f"{'is' if len(present) == 1 else 'are'} set"
            )
        return self

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None


@lru_cache(maxsize=1)
def get_listener_settings() -> ListenerSettings:
    return ListenerSettings()
