"""The PACS nodes of ``HABITUS_DICOM_NODES``: who may send to the listener, where results go.

A module of its own, importing nothing heavier than pydantic, because the settings model
(``habitus.settings``) holds the list and the container health check reads that model every
30 s: the job store (``habitus.jobs``, which names nodes as destinations) pulls in redis.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator


class DicomNode(BaseModel):
    """A PACS node results can be sent to; the list comes from ``HABITUS_DICOM_NODES``.

    With ``tls`` the results go over DICOM TLS (PS3.15 B.1): the node's certificate must be
    signed by ``tls_ca_file`` (the system's trusted CAs when unset) and name
    ``tls_server_name`` (``host`` when unset); ``tls_cert_file`` and ``tls_key_file`` are
    the certificate Habitus presents where the node asks for one (mutual TLS).
    """

    name: str
    ae_title: str = Field(min_length=1, max_length=16)
    host: str
    port: int = Field(ge=1, le=65535)
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_server_name: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _tls_complete(self) -> DicomNode:
        # half a TLS configuration would otherwise send in the clear without a word
        given = [
            field
            for field in ("tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name")
            if getattr(self, field) is not None
        ]
        if given and not self.tls:
            raise ValueError(
                f"DICOM node {self.name!r} sets {', '.join(given)} but not tls: "
                'set "tls": true to send to it over TLS'
            )
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                f"DICOM node {self.name!r}: a client certificate needs both tls_cert_file "
                "and tls_key_file"
            )
        return self

    @property
    def tls_hostname(self) -> str:
        """The name the node's certificate must carry."""
        return self.tls_server_name or self.host
