"""Certificates made by the tests: a CA, and server or client certificates it signs."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest


class Certificate(NamedTuple):
    cert_path: Path
    key_path: Path
    subject: Any  # cryptography's x509.Name
    key: Any  # its private key, to sign others with


def write_certificate(
    directory: Path,
    name: str,
    issuer: Certificate | None = None,
    hosts: Sequence[str] = ("127.0.0.1",),
) -> Certificate:
    """A key and certificate for ``hosts`` (IP addresses or DNS names), self-signed (a CA)
    or signed by ``issuer``; written as ``<name>.crt`` and ``<name>.key`` in ``directory``."""
    pytest.importorskip("cryptography", reason="certificates are made with cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = (issuer.subject, issuer.key) if issuer else (subject, key)
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_path, key_path, subject, key)
