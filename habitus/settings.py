"""The product's one settings model, read once at start-up and passed down.

Every setting is an environment variable ``HABITUS_<NAME>`` (README.md, "Settings"). Each
entry point (`habitus serve`, the API app, ``python -m service.listener``, the worker's
Celery app, the container health check) calls ``load_settings`` once and hands the result,
or the section it needs, to what it builds; no other module reads the environment (the core
reads its own part through ``habitus.config.get_settings``, the same object). The sections,
each a model of its own with its own prefix, that tests build directly:

- the analysis and Redis (``habitus.config.CoreSettings``, which this model extends),
- what several services share: the spool, the DICOM nodes, the log level,
- ``api`` (``HABITUS_*``), ``listener`` (``HABITUS_LISTENER_*``), ``worker`` (``HABITUS_*``)
  and ``delivery`` (``HABITUS_DELIVERY_*``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from habitus.config import CoreSettings, get_settings
from habitus.nodes import DicomNode

GIB = 1024**3


# -- API keys (HABITUS_API_KEYS) ---------------------------------------------------------------


class Scope(StrEnum):
    SUBMIT = "submit"  # upload studies
    READ_OWN = "read:own"  # see, list and download the key's own jobs
    READ_ALL = "read:all"  # ... and every other job (the listener's, other keys')
    DELETE = "delete"  # cancel and delete jobs it can see
    ADMIN = "admin"  # everything


KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
"""Names are logged and stored as job owners: short, printable, never ``node:...``."""


class ApiKeySpec(BaseModel):
    """One key of ``HABITUS_API_KEYS`` given with its scopes."""

    model_config = ConfigDict(extra="forbid")

    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    key: SecretStr | None = None
    scopes: frozenset[Scope] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_secret(self) -> ApiKeySpec:
        if (self.sha256 is None) == (self.key is None):
            raise ValueError("give an API key either as 'sha256' (preferred) or as 'key'")
        return self


ApiKeySetting = SecretStr | ApiKeySpec


def check_key_names(keys: Mapping[str, ApiKeySetting]) -> None:
    """Raise ValueError naming the key names that cannot be job owners."""
    bad = sorted(name for name in keys if not KEY_NAME.fullmatch(name))
    if bad:
        raise ValueError(
            f"API key names must match {KEY_NAME.pattern} (letters, digits, '._@-', at most "
            f"64); not: {bad}"
        )


# -- node certificates (HABITUS_LISTENER_NODE_CERTIFICATES) ------------------------------------

_HEX = re.compile(r"^[0-9a-f]{64}$")


def certificate_identity(text: str, node: str) -> tuple[str, str]:
    """``("sha256", hex)`` or ``("cn", name)`` from ``sha256:<hex>`` or ``cn:<name>``."""
    kind, _, value = text.partition(":")
    kind = kind.strip().lower()
    if kind == "sha256":
        value = value.replace(":", "").strip().lower()
        if _HEX.fullmatch(value):
            return kind, value
    elif kind == "cn" and value.strip():
        return kind, value.strip()
    raise ValueError(
        f"the certificate of node {node!r} must be 'sha256:<64 hex digits>' or "
        f"'cn:<common name>'; found {text!r}"
    )


# -- sections ----------------------------------------------------------------------------------


def default_spool_dir() -> Path:
    return Path.home() / ".local" / "share" / "habitus" / "spool"


class ApiSettings(BaseSettings):
    """The REST API and its uploads (``HABITUS_*``)."""

    model_config = SettingsConfigDict(env_prefix="HABITUS_", extra="ignore")

    # API keys: name -> key (all scopes) or {"sha256": ..., "scopes": [...]}.
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
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    @field_validator("api_keys")
    @classmethod
    def _owner_names(cls, keys: dict[str, ApiKeySetting]) -> dict[str, ApiKeySetting]:
        check_key_names(keys)
        return keys


# The PET of a PET-CT study travels with its CT into the job (uptake per tissue).
STORED_MODALITIES: tuple[str, ...] = ("CT", "PT")


class ListenerSettings(BaseSettings):
    """The DICOM listener (``HABITUS_LISTENER_*``)."""

    model_config = SettingsConfigDict(env_prefix="HABITUS_LISTENER_", extra="ignore")

    ae_title: str = "HABITUS"
    host: str = "0.0.0.0"  # address the C-STORE SCP binds to
    port: int = Field(default=11112, ge=0, le=65535)  # 0: pick a free port (tests)
    # Where received instances wait for their jobs; default: <HABITUS_SPOOL_DIR>/dicom
    # (Settings.listener_spool_dir).
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
        for name, identity in value.items():
            certificate_identity(identity, node=name)  # raises ValueError with the reason
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


class WorkerSettings(BaseSettings):
    """The analysis worker (``HABITUS_*``)."""

    model_config = SettingsConfigDict(env_prefix="HABITUS_", extra="ignore")

    # One process per GPU: concurrency = number of GPUs (1 on a CPU-only machine).
    worker_concurrency: int = Field(default=1, ge=1)
    # GPU ids handed out to worker processes in turn (CUDA_VISIBLE_DEVICES); empty: leave it.
    worker_gpus: list[str] = Field(default_factory=list)
    task_soft_time_limit_s: int = Field(default=3300, ge=1)  # the job fails with a reason
    task_time_limit_s: int = Field(default=3600, ge=1)  # the process is killed
    # Redis redelivers a task not acknowledged within this time; above the hard time limit,
    # so a running task is not handed to a second worker.
    visibility_timeout_s: int = Field(default=7200, ge=1)
    # How often a worker looks for tasks unacknowledged for longer than the visibility
    # timeout (their worker died) and queues them again; adds up to this to a redelivery.
    # As often, it queues again running jobs whose lease has lapsed (worker.orphans).
    redelivery_check_s: int = Field(default=60, ge=1)
    progress_interval_s: float = Field(default=1.0, ge=0.0)  # at most one write per interval
    lease_s: float = Field(default=30.0, gt=0.0)  # a job's claim lapses this long after a crash
    # Starts of one job's analysis before it ends failed: an analysis that kills its worker
    # (a poison series) is otherwise handed out again without end.
    max_attempts: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _limits_in_order(self) -> WorkerSettings:
        if self.task_soft_time_limit_s >= self.task_time_limit_s:
            raise ValueError(
                "HABITUS_TASK_SOFT_TIME_LIMIT_S must be below HABITUS_TASK_TIME_LIMIT_S; found "
                f"{self.task_soft_time_limit_s} >= {self.task_time_limit_s}"
            )
        return self


class DeliverySettings(BaseSettings):
    """Sending results to PACS nodes (``HABITUS_DELIVERY_*``)."""

    model_config = SettingsConfigDict(env_prefix="HABITUS_DELIVERY_", extra="ignore")

    ae_title: str = Field(default="HABITUS", min_length=1, max_length=16)  # calling AE title
    first_retry_s: float = Field(default=30.0, gt=0)
    # Longest single wait; keep it below the broker's visibility timeout (the worker's
    # HABITUS_VISIBILITY_TIMEOUT_S), or Redis hands the waiting message out a second time.
    max_retry_s: float = Field(default=3600.0, gt=0)
    give_up_after_s: float = Field(default=24 * 3600.0, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)  # connect, ACSE and DIMSE each


# -- the model ---------------------------------------------------------------------------------


class Settings(CoreSettings):
    """Every setting of the product: the core's, what the services share, and a section
    per service."""

    spool_dir: Path = Field(default_factory=default_spool_dir)
    # PACS nodes: who may send to the listener, where results go (HABITUS_DICOM_NODES, JSON)
    dicom_nodes: list[DicomNode] = Field(default_factory=list)
    log_level: str = "INFO"

    api: ApiSettings = Field(default_factory=ApiSettings)
    listener: ListenerSettings = Field(default_factory=ListenerSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @field_validator("dicom_nodes")
    @classmethod
    def _unique_node_names(cls, nodes: list[DicomNode]) -> list[DicomNode]:
        names = [n.name for n in nodes]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"DICOM node names must be unique; repeated: {repeated}")
        return nodes

    @property
    def jobs_dir(self) -> Path:
        return self.spool_dir / "jobs"

    @property
    def uploads_dir(self) -> Path:
        return self.spool_dir / "uploads"

    @property
    def listener_spool_dir(self) -> Path:
        """Where received instances wait: the listener's own setting, else in the spool."""
        return self.listener.spool_dir or self.spool_dir / "dicom"

    def node(self, name: str) -> DicomNode | None:
        return next((n for n in self.dicom_nodes if n.name == name), None)

    def replaced(self, **changes: Any) -> Settings:
        """A copy with ``changes``; a section's name maps to the fields that change in it."""
        update = {
            name: section.model_copy(update=value)
            if isinstance(section := getattr(self, name), BaseModel) and isinstance(value, dict)
            else value
            for name, value in changes.items()
        }
        return self.model_copy(update=update)


def load_settings() -> Settings:
    """The settings of this process, read from the environment: called once by each entry
    point. The core's part is the object the core itself reads (``habitus.config``), so the
    two never disagree."""
    return Settings(**dict(get_settings()))


def default_settings() -> Settings:
    """Every setting at its default, whatever the environment holds (the OpenAPI document)."""
    sections: dict[str, Any] = {
        name: section.model_construct()
        for name, field in Settings.model_fields.items()
        if isinstance(section := field.default_factory, type) and issubclass(section, BaseSettings)
    }
    return Settings.model_construct(**sections)


class Variable(NamedTuple):
    """One setting: its environment variable, and where the model keeps it."""

    name: str  # HABITUS_...
    section: str | None  # the section's field in Settings; None: a field of Settings itself
    field: str
    info: FieldInfo

    def value(self, settings: Settings) -> Any:
        return getattr(getattr(settings, self.section) if self.section else settings, self.field)


def environment_variables() -> Iterator[Variable]:
    """Every setting of the model, as its environment variable."""
    own_prefix = str(Settings.model_config.get("env_prefix", ""))
    for name, field in Settings.model_fields.items():
        section = field.default_factory
        if isinstance(section, type) and issubclass(section, BaseSettings):
            prefix = str(section.model_config.get("env_prefix", ""))
            for inner, info in section.model_fields.items():
                yield Variable(f"{prefix}{inner}".upper(), name, inner, info)
        else:
            yield Variable(f"{own_prefix}{name}".upper(), None, name, field)


def default_value(field: FieldInfo) -> Any:
    """What ``field`` holds when its variable is unset."""
    return field.get_default(call_default_factory=True)
