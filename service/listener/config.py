"""Settings of the DICOM listener (prefix ``HABITUS_LISTENER_``), read once at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The PET of a PET-CT study travels with its CT into the job (uptake per tissue).
STORED_MODALITIES: tuple[str, ...] = ("CT", "PT")


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
    # CT and PET by default; ["CT"] leaves PET-CT studies without their uptake per tissue.
    stored_modalities: list[str] = Field(default_factory=lambda: list(STORED_MODALITIES))

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

    # Associations at once, from all peers and from one peer host; one more is rejected
    # (A-ASSOCIATE-RJ, local limit exceeded). TCP connections beyond twice these numbers are
    # closed as soon as they are accepted, before a thread is started for them.
    max_associations: int = Field(default=32, ge=1)
    max_associations_per_host: int = Field(default=16, ge=1)
    # What one association may send: data set bytes and instances (0: no limit). Beyond,
    # each further C-STORE is answered 0xA700 (out of resources) and its bytes are dropped as
    # they arrive; the association goes on.
    max_association_bytes: int = Field(default=16 * 1024**3, ge=0)
    max_association_instances: int = Field(default=20000, ge=0)
    # The spool's disk use: at most this many bytes (0: no limit) and at least this much
    # free space left on its file system; an instance that does not fit is answered 0xA700.
    spool_max_bytes: int = Field(default=0, ge=0)
    spool_min_free_bytes: int = Field(default=1024**3, ge=0)
    # Largest PDU accepted, announced to peers; a peer announcing a larger one is answered
    # with an A-ABORT before any buffer is sized by it. 0: no limit (buffers still grow only
    # as bytes arrive).
    max_pdu_bytes: int = Field(default=1024 * 1024, ge=0)
    # Silence allowed of a peer: an association idle this long is aborted, and a read or
    # write that waits this long on the connection fails it (a half-open connection).
    network_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    # A connection that sends no association request within this time is closed.
    acse_timeout_s: float = Field(default=30.0, gt=0, le=600)
    dimse_timeout_s: float = Field(default=60.0, gt=0, le=3600)

    # DICOM TLS (PS3.15 B.1): a certificate and its key turn it on; a CA file besides
    # makes the listener require client certificates signed by that CA.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_ca_file: Path | None = None
    # Client certificates of known nodes, by node name (HABITUS_DICOM_NODES):
    # "sha256:<hex of the DER certificate's SHA-256>" or "cn:<subject common name>". A peer
    # calling with a node's AE title must present that node's certificate, and a certificate
    # named here is accepted only from its own node. Needs TLS with a CA file.
    node_certificates: dict[str, str] = Field(default_factory=dict)

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

    @field_validator("node_certificates")
    @classmethod
    def _check_certificates(cls, value: dict[str, str]) -> dict[str, str]:
        from service.listener.peercert import CertificateIdentity

        for name, identity in value.items():
            CertificateIdentity.parse(identity, node=name)  # raises ValueError with the reason
        return value

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
        if self.node_certificates and (not self.tls_enabled or self.tls_ca_file is None):
            raise ValueError(
                "HABITUS_LISTENER_NODE_CERTIFICATES needs DICOM TLS with client certificates: "
                "set HABITUS_LISTENER_TLS_CERT_FILE, _TLS_KEY_FILE and _TLS_CA_FILE"
            )
        return self

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None


@lru_cache(maxsize=1)
def get_listener_settings() -> ListenerSettings:
    return ListenerSettings()
