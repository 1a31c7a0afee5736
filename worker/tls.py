"""DICOM TLS towards a PACS node: the client context, its files, and why a handshake failed.

pynetdicom logs a failed TLS handshake and reports only "association failed"; the context
made here keeps the TLS error of the connection it wraps (``TlsContext.error``), so a
delivery record can say that the certificate was refused and why.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from habitus.nodes import DicomNode


class _WitnessedSocket(ssl.SSLSocket):
    """An SSL socket that hands its TLS errors (handshake or later) to its context."""

    def connect(self, address: Any) -> None:
        try:
            super().connect(address)
        except ssl.SSLError as exc:
            self._witness(exc)
            raise

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        try:
            return super().recv(buflen, flags)
        except ssl.SSLError as exc:  # e.g. the node refused our client certificate (TLS 1.3)
            self._witness(exc)
            raise

    def _witness(self, exc: ssl.SSLError) -> None:
        context = self.context
        if isinstance(context, TlsContext) and context.error is None:
            context.error = exc


class TlsContext(ssl.SSLContext):
    """A client context that remembers the first TLS error of its connections."""

    error: ssl.SSLError | None = None
    sslsocket_class = _WitnessedSocket


def client_context(node: DicomNode) -> TlsContext:
    """A context for one association with ``node``: certificate and host name checked."""
    context = TlsContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if node.tls_ca_file is not None:
        context.load_verify_locations(cafile=node.tls_ca_file)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if node.tls_cert_file is not None and node.tls_key_file is not None:
        context.load_cert_chain(node.tls_cert_file, node.tls_key_file)
    return context


def missing_files(node: DicomNode) -> list[str]:
    """The TLS files of ``node`` that are not readable files, as ``field (path)``."""
    files: dict[str, Path | None] = {
        "tls_ca_file": node.tls_ca_file,
        "tls_cert_file": node.tls_cert_file,
        "tls_key_file": node.tls_key_file,
    }
    return [f"{field} ({path})" for field, path in files.items() if path and not _readable(path)]


def _readable(path: Path) -> bool:
    try:
        with path.open("rb"):
            return path.is_file()
    except OSError:
        return False


def describe(error: ssl.SSLError) -> str:
    """What went wrong in words: OpenSSL's verification message where there is one."""
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return f"certificate verify failed: {error.verify_message}"
    return error.reason or str(error)
