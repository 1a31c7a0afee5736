"""Which known node a TLS client certificate belongs to (HABITUS_LISTENER_NODE_CERTIFICATES).

A certificate signed by the trusted CA proves only that its holder is one of the hospital's
nodes; this maps it to the one node it was issued to, so that a node cannot call with
another node's AE title.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from habitus.settings import certificate_identity


class _Node(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def ae_title(self) -> str: ...


@dataclass(frozen=True)
class PeerCertificate:
    """What identifies a verified client certificate: its fingerprint and subject CNs."""

    sha256: str  # lower-case hex of the SHA-256 of the DER encoding
    common_names: frozenset[str]

    @classmethod
    def of(cls, sock: Any) -> PeerCertificate | None:
        """The verified certificate of a TLS socket; None for plain TCP or no certificate."""
        if not isinstance(sock, ssl.SSLSocket):
            return None
        der = sock.getpeercert(binary_form=True)
        if not der:
            return None
        subject: Any = (sock.getpeercert() or {}).get("subject", ())
        names = {str(value) for rdn in subject for key, value in rdn if key == "commonName"}
        return cls(hashlib.sha256(der).hexdigest(), frozenset(names))

    def describe(self) -> str:
        cn = ", ".join(sorted(self.common_names)) or "no CN"
        return f"certificate CN={cn} SHA-256={self.sha256[:16]}..."


@dataclass(frozen=True)
class CertificateIdentity:
    """How a node's certificate is named: by fingerprint or by subject common name."""

    kind: str  # "sha256" or "cn"
    value: str

    @classmethod
    def parse(cls, text: str, node: str) -> CertificateIdentity:
        return cls(*certificate_identity(text, node))

    def matches(self, cert: PeerCertificate) -> bool:
        if self.kind == "sha256":
            return cert.sha256 == self.value
        return self.value in cert.common_names


class CertificatePolicy:
    """Refuses a peer whose certificate is not that of the node whose AE title it calls with."""

    def __init__(self, certificates: dict[str, str], nodes: Sequence[_Node]) -> None:
        names = {n.name for n in nodes}
        unknown = sorted(set(certificates) - names)
        if unknown:
            raise ValueError(
                f"HABITUS_LISTENER_NODE_CERTIFICATES names {', '.join(unknown)}, not among "
                f"the known nodes ({', '.join(sorted(names)) or 'none configured'})"
            )
        self.identities = {
            name: CertificateIdentity.parse(text, name) for name, text in certificates.items()
        }
        self.nodes_of_ae: dict[str, set[str]] = {}
        for node in nodes:
            self.nodes_of_ae.setdefault(node.ae_title.strip(), set()).add(node.name)

    def refusal(self, calling_ae_title: str, cert: PeerCertificate | None) -> str | None:
        """Why this certificate may not call with this AE title, or None if it may."""
        if not self.identities:
            return None
        claimed = self.nodes_of_ae.get(calling_ae_title.strip(), set())
        owners = {name for name, ident in self.identities.items() if cert and ident.matches(cert)}
        named = {name for name in claimed if name in self.identities}
        shown = cert.describe() if cert else "no client certificate"
        if named and not owners & named:
            whose = f", the certificate of node {', '.join(sorted(owners))}" if owners else ""
            return (
                f"calling AE title {calling_ae_title!r} belongs to node "
                f"{', '.join(sorted(named))}, whose certificate is not the peer's ({shown}{whose})"
            )
        if owners and not owners & claimed:
            return (
                f"the peer's {shown} belongs to node {', '.join(sorted(owners))}, "
                f"which does not call as {calling_ae_title!r}"
            )
        return None
