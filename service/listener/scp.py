"""The C-ECHO / C-STORE SCP: who may associate, what is accepted, and the C-STORE handler.

The handler does the least that makes an instance safe: read the few attributes it checks
(``header``), write the bytes as received (no decoding, no re-encoding, no copy) to the spool,
make them durable and answer. Everything slower happens in the completion thread.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import weakref
from collections.abc import Iterable, Sequence
from io import BytesIO
from typing import Any, Protocol

from pydicom import uid
from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom.events import Event
from pynetdicom.presentation import AllStoragePresentationContexts, PresentationContext
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from habitus.errors import InputRefused
from habitus.jobs import Origin, OriginKind
from habitus.settings import ListenerSettings
from service.listener import fastpath
from service.listener.completion import CompletionTracker
from service.listener.diskguard import SpoolGuard
from service.listener.filemeta import file_meta
from service.listener.header import InstanceHeader, read_header
from service.listener.limits import AssociationBudget, AssociationCounter, RateLimitedLog
from service.listener.peercert import CertificatePolicy, PeerCertificate
from service.listener.spool import SeriesKey, check_uid
from service.listener.statuses import StoreStatus

log = logging.getLogger(__name__)

TRANSFER_SYNTAXES: tuple[str, ...] = (
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLossless,
    uid.JPEGLosslessSV1,
    uid.JPEGLSLossless,
    uid.JPEGLSNearLossless,
    uid.JPEG2000Lossless,
    uid.JPEG2000,
    uid.RLELossless,
)
"""Accepted as sent and stored unchanged; the reader decodes them when a job runs."""

MODALITY_OF_SOP_CLASS: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.2": "CT",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1": "CT",  # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2": "CT",  # Legacy Converted Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.128": "PT",  # Positron Emission Tomography Image Storage
    "1.2.840.10008.5.1.4.1.1.130": "PT",  # Enhanced PET Image Storage
    "1.2.840.10008.5.1.4.1.1.128.1": "PT",  # Legacy Converted Enhanced PET Image Storage
}
"""Image SOP classes the listener can keep, by modality (``stored_modalities`` picks)."""


class KnownNode(Protocol):
    """A PACS node from the service's node list (HABITUS_DICOM_NODES)."""

    @property
    def name(self) -> str: ...

    @property
    def ae_title(self) -> str: ...

    @property
    def host(self) -> str: ...


class InstanceRefusedError(Exception):
    """Why one instance is not kept, with the status that says so to the sender."""

    def __init__(self, status: StoreStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def presentation_contexts() -> list[PresentationContext]:
    """Verification plus every storage SOP class, each with the accepted transfer syntaxes.

    Every storage class is accepted at negotiation so that a study pushed whole (PET, dose
    reports, secondary captures beside the CT) never fails the association; instances the
    listener does not keep are refused one by one with a named status instead.
    """
    context = fastpath.context_class()
    contexts = [context()]
    contexts[0].abstract_syntax = Verification
    contexts[0].transfer_syntax = [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian]
    for template in AllStoragePresentationContexts:
        cx = context()
        cx.abstract_syntax = template.abstract_syntax
        cx.transfer_syntax = list(TRANSFER_SYNTAXES)
        contexts.append(cx)
    return contexts


class AccessPolicy:
    """Which calling AE titles (and, optionally, hosts) may associate."""

    def __init__(self, settings: ListenerSettings, nodes: Sequence[KnownNode]) -> None:
        self.any_ae = "*" in settings.allowed_ae_titles
        self.ae_titles = {a.strip() for a in settings.allowed_ae_titles if a.strip() != "*"}
        self.ae_titles |= {n.ae_title.strip() for n in nodes}
        self.check_hosts = settings.check_node_hosts
        self.node_addresses: dict[str, set[str]] = {}
        for node in nodes:
            self.node_addresses.setdefault(node.ae_title.strip(), set()).update(
                _addresses(node.host)
            )

    def refusal(self, calling_ae_title: str, peer_host: str) -> str | None:
        """Why this peer may not associate, or None if it may."""
        ae = calling_ae_title.strip()
        if not self.any_ae and ae not in self.ae_titles:
            known = ", ".join(sorted(self.ae_titles)) or "none configured"
            return f"calling AE title {ae!r} is not allowed (allowed: {known})"
        if self.check_hosts and ae in self.node_addresses:
            allowed = self.node_addresses[ae]
            if peer_host not in allowed:
                return (
                    f"calling AE title {ae!r} must connect from "
                    f"{', '.join(sorted(allowed))}; it connected from {peer_host}"
                )
        return None


def _addresses(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        log.warning("cannot resolve the host %r of a known DICOM node", host)
        return {host}


def origin_of(event: Event) -> Origin:
    requestor = event.assoc.requestor
    return Origin(
        kind=OriginKind.DICOM,
        calling_ae_title=str(requestor.ae_title).strip(),
        called_ae_title=str(event.assoc.acceptor.ae_title).strip(),
        peer_host=str(requestor.address),
    )


def check_instance(
    header: InstanceHeader,
    sop_class_uid: str,
    sop_instance_uid: str,
    stored_modalities: Iterable[str],
) -> tuple[SeriesKey, str]:
    """The series an instance belongs to; raises InstanceRefusedError when it is not kept."""
    modality = MODALITY_OF_SOP_CLASS.get(sop_class_uid)
    if modality is None or modality not in stored_modalities:
        kept = ", ".join(sorted(stored_modalities))
        raise InstanceRefusedError(
            StoreStatus.REFUSED_SOP_CLASS_NOT_SUPPORTED,
            f"SOP class {sop_class_uid} ({modality or 'not an image class kept here'}) "
            f"is not stored; this listener keeps {kept} images",
        )
    if header.sop_class_uid != sop_class_uid or header.sop_instance_uid != sop_instance_uid:
        raise InstanceRefusedError(
            StoreStatus.ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS,
            f"the data set's SOP Class/Instance UIDs ({header.sop_class_uid!r}, "
            f"{header.sop_instance_uid!r}) differ from the request's "
            f"({sop_class_uid!r}, {sop_instance_uid!r})",
        )
    if not header.has_pixel_data:
        raise InstanceRefusedError(
            StoreStatus.ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS,
            "an image instance must have Pixel Data; this one has none",
        )
    try:
        key = SeriesKey(
            check_uid(header.study_instance_uid, "Study Instance UID"),
            check_uid(header.series_instance_uid, "Series Instance UID"),
        )
        sop = check_uid(sop_instance_uid, "SOP Instance UID")
    except InputRefused as exc:
        raise InstanceRefusedError(
            StoreStatus.ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS, str(exc)
        ) from exc
    return key, sop


class StoreHandler:
    """The EVT_C_STORE handler: check, write to the spool, answer."""

    def __init__(self, tracker: CompletionTracker, settings: ListenerSettings) -> None:
        self.tracker = tracker
        self.stored_modalities = frozenset(settings.stored_modalities)
        self.max_association_bytes = settings.max_association_bytes
        self.max_association_instances = settings.max_association_instances
        self.disk = SpoolGuard(
            tracker.spool.root, settings.spool_max_bytes, settings.spool_min_free_bytes
        )
        self._origins: weakref.WeakKeyDictionary[Any, Origin] = weakref.WeakKeyDictionary()
        self._budgets: weakref.WeakKeyDictionary[Any, AssociationBudget] = (
            weakref.WeakKeyDictionary()
        )
        self._refusals = RateLimitedLog()

    def budget_of(self, assoc: Any) -> AssociationBudget:
        """What this association may still send (one budget per association)."""
        budget = self._budgets.get(assoc)
        if budget is None:
            budget = self._budgets[assoc] = AssociationBudget(
                self.max_association_bytes, self.max_association_instances
            )
        return budget

    def __call__(self, event: Event) -> int:
        request: Any = event.request
        sop_class = str(request.AffectedSOPClassUID)
        sop_instance = str(request.AffectedSOPInstanceUID)
        calling = str(event.assoc.requestor.ae_title).strip()
        transfer_syntax = UID(event.context.transfer_syntax)
        dataset: BytesIO = request.DataSet  # the bytes as received, never re-encoded
        budget = self.budget_of(event.assoc)
        size = budget.take_dropped() or dataset.getbuffer().nbytes
        over, kind = budget.charge(size), "association"
        if over is None:
            over, kind = self.disk.refusal(size), "spool"
        if over is not None:
            host = str(event.assoc.requestor.address)
            unsaid = self._refusals.due(f"{kind} {host}")  # a peer cannot flood the log
            if unsaid is not None:
                log.warning(
                    "C-STORE from %s (%s) refused with 0x%04X (out of resources): "
                    "SOP instance %s: %s%s",
                    calling,
                    host,
                    StoreStatus.REFUSED_OUT_OF_RESOURCES,
                    sop_instance,
                    over,
                    f" ({unsaid} more refused since the last such line)" if unsaid else "",
                )
            return int(StoreStatus.REFUSED_OUT_OF_RESOURCES)
        try:
            header = read_header(dataset, transfer_syntax)
            key, sop = check_instance(header, sop_class, sop_instance, self.stored_modalities)
        except InstanceRefusedError as refusal:
            log.warning(
                "C-STORE from %s refused with 0x%04X (%s): SOP instance %s: %s",
                calling,
                refusal.status,
                refusal.status.name,
                sop_instance,
                refusal.reason,
            )
            return int(refusal.status)
        except Exception as exc:  # a data set pydicom cannot parse
            log.warning(
                "C-STORE from %s refused with 0x%04X (cannot understand): SOP instance %s: %s",
                calling,
                StoreStatus.ERROR_CANNOT_UNDERSTAND,
                sop_instance,
                exc,
            )
            return int(StoreStatus.ERROR_CANNOT_UNDERSTAND)
        try:
            with dataset.getbuffer() as body:  # no copy of the data set
                tmp = self.tracker.spool.write_temp(
                    [file_meta(sop_class, sop_instance, transfer_syntax, calling), body]
                )
        except OSError as exc:
            log.error("C-STORE from %s: spool write failed: %s", calling, exc)
            return int(StoreStatus.REFUSED_OUT_OF_RESOURCES)
        self.disk.added(size)
        try:
            origin = self._origins.get(event.assoc)
            if origin is None:  # one per association: built once, compared cheaply after
                origin = self._origins[event.assoc] = origin_of(event)
            final = self.tracker.commit(tmp, key, sop, origin, association=id(event.assoc))
        except OSError as exc:
            self.tracker.spool.discard(tmp)
            log.error("C-STORE from %s: spool rename failed: %s", calling, exc)
            return int(StoreStatus.REFUSED_OUT_OF_RESOURCES)
        try:
            self.tracker.spool.sync_names(final)
        except OSError as exc:  # in place but maybe not durable: the sender should retry
            log.error("C-STORE from %s: spool directory sync failed: %s", calling, exc)
            return int(StoreStatus.REFUSED_OUT_OF_RESOURCES)
        return int(StoreStatus.SUCCESS)


# A-ASSOCIATE-RJ (PS3.8 9.3.4): result, source, reason
_REJECT_UNKNOWN_CALLER = (0x01, 0x01, 0x03)  # permanent, service-user, calling AE not recognised
_REJECT_LOCAL_LIMIT = (0x02, 0x03, 0x02)  # transient, service-provider (presentation), limit


class RequestGate:
    """The EVT_REQUESTED handler: who may associate, checked before anything else is done.

    The calling AE title and its host, then the TLS certificate, then the number of
    associations open in all and from the peer's host.
    """

    def __init__(
        self,
        policy: AccessPolicy,
        counter: AssociationCounter | None = None,
        certificates: CertificatePolicy | None = None,
    ) -> None:
        self.policy = policy
        self.counter = counter
        self.certificates = certificates
        self._refusals = RateLimitedLog()

    def __call__(self, event: Event) -> None:
        primitive: Any = event.assoc.requestor.primitive
        calling = str(primitive.calling_ae_title).strip()
        host = str(event.assoc.requestor.address)
        reason = self.policy.refusal(calling, host)
        reject = _REJECT_UNKNOWN_CALLER
        if reason is None and self.certificates is not None:
            sock = getattr(event.assoc.dul.socket, "socket", None)
            reason = self.certificates.refusal(calling, PeerCertificate.of(sock))
        if reason is None and self.counter is not None:
            reason = self.counter.admit(event.assoc, host)
            reject = _REJECT_LOCAL_LIMIT
        if reason is not None:
            unsaid = self._refusals.due(f"{host} {calling} {reject}")  # no log flood
            if unsaid is not None:
                log.warning(
                    "association from %s (%s) rejected: %s%s",
                    calling,
                    host,
                    reason,
                    f" ({unsaid} more rejected since the last such line)" if unsaid else "",
                )
            event.assoc.acse.send_reject(*reject)
            event.assoc.kill()  # waits until the reject has gone out, as pynetdicom's own


class AssociationEnd:
    """EVT_CONN_CLOSE: tell the completion tracker a sender has finished, and free its place."""

    def __init__(
        self, tracker: CompletionTracker, counter: AssociationCounter | None = None
    ) -> None:
        self.tracker = tracker
        self.counter = counter

    def __call__(self, event: Event) -> None:
        self.tracker.association_ended(id(event.assoc))
        if self.counter is not None:
            self.counter.ended(event.assoc)


class ConnectionOpen:
    """EVT_CONN_OPEN, before the association's threads start: tune its transport.

    Nagle's algorithm off, so each response leaves at once: otherwise a small C-STORE
    response waits for the peer's delayed ACK (about 40 ms), which alone would cap a sender
    at some 25 instances a second. Then pynetdicom's per-message logging off and the ingest
    fast path on (``fastpath``), which drops data sets beyond the association's budget as
    they arrive.
    """

    def __init__(self, store: StoreHandler) -> None:
        self.store = store

    def __call__(self, event: Event) -> None:
        sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fastpath.quiet(event.assoc)
        if fastpath.install(event.assoc):
            fastpath.limit_data_sets(event.assoc, self.store.budget_of(event.assoc))


def build_ae(settings: ListenerSettings) -> AE:
    """The listener's AE; its contexts go to ``start_server`` (``presentation_contexts``)."""
    ae = AE(ae_title=settings.ae_title)
    # The limit is the RequestGate's (counted per host too); pynetdicom's own count, which
    # includes connections that have not asked for an association, is only a backstop.
    ae.maximum_associations = 2 * settings.max_associations
    ae.maximum_pdu_size = settings.max_pdu_bytes
    ae.network_timeout = settings.network_timeout_s
    ae.acse_timeout = settings.acse_timeout_s
    ae.dimse_timeout = settings.dimse_timeout_s
    ae.require_called_aet = settings.require_called_ae_title
    return ae


def server_ssl_context(settings: ListenerSettings) -> ssl.SSLContext | None:
    if not settings.tls_enabled:
        return None
    assert settings.tls_cert_file is not None and settings.tls_key_file is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    if settings.tls_ca_file is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(settings.tls_ca_file)
    return context


def event_handlers(
    tracker: CompletionTracker, settings: ListenerSettings, nodes: Sequence[KnownNode]
) -> list[Any]:
    counter = AssociationCounter(settings.max_associations, settings.max_associations_per_host)
    certificates = (
        CertificatePolicy(settings.node_certificates, nodes) if settings.tls_enabled else None
    )
    store = StoreHandler(tracker, settings)
    return [
        (evt.EVT_CONN_OPEN, ConnectionOpen(store)),
        (evt.EVT_CONN_CLOSE, AssociationEnd(tracker, counter)),
        (evt.EVT_REQUESTED, RequestGate(AccessPolicy(settings, nodes), counter, certificates)),
        (evt.EVT_C_STORE, store),
    ]
