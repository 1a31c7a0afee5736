"""pynetdicom's acceptor tuned for C-STORE throughput: the one module that reaches inside it.

Measured with ``bench/bench_ingest.py`` (one association, 512 x 512 slices), stock
pynetdicom 3.0.4 spends about 6 ms per instance outside any handler, three times what dcmtk's
storescp needs for the whole instance:

- both of an association's threads poll with ``time.sleep(0.001)`` (about 2 ms on a busy
  machine): data waiting on the socket, a decoded C-STORE request waiting for the association
  thread and its response waiting for the network (DUL) thread each lose up to one sleep;
- the C-STORE response's command set is built and encoded twice through pydicom (about 1 ms);
- the socket is read 4096 bytes at a time;
- every association starts with a deep copy of the server's presentation contexts, which
  rebuilds and re-validates each UID: some 2,400 for the listener's 171 contexts, 35 ms or
  more of the one CPU that all associations share (``IngestContext`` copies in microseconds).

``install`` (called on EVT_CONN_OPEN, before the association's threads start, for the
listener's own associations only) changes, per association:

1. the DUL thread waits in ``select`` on its socket instead of sleeping: ``IngestSocket.ready``
   blocks up to the stock loop delay and returns as soon as a PDU arrives; the DUL's own
   ``_run_loop_delay`` becomes 0 so that the wait happens there and only there;
2. ``IngestSocket.recv`` reads each PDU with ``recv_into`` into one reused buffer;
3. a C-STORE request is served on the DUL thread the moment its last fragment is decoded,
   instead of waiting for the association thread's next poll; its response then leaves on the
   DUL's next loop, with no hand-over between threads (other requests, C-ECHO included, take
   the stock path). The handler is the same either way: it writes and answers, nothing heavy;
4. a C-STORE response that carries only a status is encoded directly (PS3.7 9.3.1.2; a test
   compares it byte for byte with pynetdicom's encoding); any other response is pynetdicom's.

Everything here relies on pynetdicom internals of one version (``SUPPORTED_VERSION``): on any
other version ``install`` changes nothing and the listener runs stock pynetdicom, slower.
"""

from __future__ import annotations

import copy
import logging
import queue
import select
import socket
import ssl
import struct
import time
from typing import Any

import pynetdicom
from pynetdicom import evt
from pynetdicom._handlers import standard_dimse_recv_handler, standard_dimse_sent_handler
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import AssociationSocket

log = logging.getLogger(__name__)

SUPPORTED_VERSION = "3.0.4"
ACTIVE = pynetdicom.__version__ == SUPPORTED_VERSION
"""Whether ``install`` tunes associations here; False: stock pynetdicom throughout."""

POLL_S = 0.001
"""Longest wait for socket data in one DUL loop: the stock loop delay, so timers and
shutdown are noticed as often as before."""

_KEEP_BUFFER_UP_TO = 4 * 1024 * 1024
"""Bytes: a receive buffer up to this size is kept for the association's next PDUs."""

_warned = False


class IngestContext(PresentationContext):
    """A presentation context whose copies share its UIDs (immutable strings).

    pynetdicom deep-copies the server's contexts for each association so that negotiation can
    change them; a copy that shares the UIDs and copies the lists is just as independent.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> IngestContext:
        clone = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, list | dict | set):
                vars(clone)[name] = copy.copy(value)
        return clone


def context_class() -> type[PresentationContext]:
    """The class for the listener's presentation contexts: IngestContext where supported."""
    return IngestContext if ACTIVE else PresentationContext


def quiet(assoc: Any) -> None:
    """Unbind pynetdicom's standard DIMSE logging handlers from one association.

    They log every message (an INFO line per C-STORE) and copy each received data set to
    report whether it is present; the listener logs what matters itself. Public API, any
    version.
    """
    for event, handler in (
        (evt.EVT_DIMSE_RECV, standard_dimse_recv_handler),
        (evt.EVT_DIMSE_SENT, standard_dimse_sent_handler),
    ):
        assoc.unbind(event, handler)


def install(assoc: Any) -> bool:
    """Tune one acceptor association before its threads start; False where not supported."""
    global _warned
    if not ACTIVE:
        if not _warned:
            _warned = True
            log.warning(
                "pynetdicom %s: the ingest fast path is written for %s; using stock pynetdicom",
                pynetdicom.__version__,
                SUPPORTED_VERSION,
            )
        return False
    if assoc.is_alive() or not isinstance(assoc.dul.socket, AssociationSocket):
        return False  # already running, or not a socket this module knows
    assoc.dimse = IngestDIMSE(assoc)
    assoc.dul.socket.__class__ = IngestSocket  # same object, queued connection event kept
    assoc.dul._run_loop_delay = 0  # the DUL now waits in IngestSocket.ready
    return True


class IngestSocket(AssociationSocket):
    """An association socket that waits for data instead of polling, and reads PDUs whole."""

    _buffer: bytearray | None = None

    @property
    def ready(self) -> bool:
        sock = self.socket
        if sock is None or self._is_connected is False:
            time.sleep(POLL_S)  # keep the DUL loop paced while the connection winds down
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True  # decrypted bytes already buffered: select would not see them
        try:
            readable, _, _ = select.select([sock], [], [], POLL_S)
        except (OSError, TimeoutError, ValueError):
            self.event_queue.put("Evt17")  # transport connection closed, as stock
            return False
        return bool(readable)

    def recv(self, nr_bytes: int) -> bytearray:
        """Read ``nr_bytes`` (fewer if the peer closes), straight into one reused buffer.

        The caller copies the result at once; the view returned is only valid until the
        next call.
        """
        sock = self.socket
        assert sock is not None
        if nr_bytes > _KEEP_BUFFER_UP_TO:  # a huge PDU: its buffer is not kept afterwards
            view = memoryview(bytearray(nr_bytes))
        else:
            if self._buffer is None or len(self._buffer) < nr_bytes:
                self._buffer = bytearray(max(nr_bytes, 65536))
            view = memoryview(self._buffer)
        # MSG_WAITALL: one system call for a whole PDU; TLS sockets take no flags
        flags = 0 if isinstance(sock, ssl.SSLSocket) else socket.MSG_WAITALL
        received = 0
        while received < nr_bytes:
            count = sock.recv_into(view[received:nr_bytes], nr_bytes - received, flags)
            if not count:
                break  # connection closed: return what arrived, as stock
            received += count
        return view[:received]  # type: ignore[return-value]  # a bytes-like view, not copied


class IngestDIMSE(DIMSEServiceProvider):
    """Serves C-STORE requests where they are decoded; encodes status-only responses directly."""

    def __init__(self, assoc: Any) -> None:
        super().__init__(assoc)
        self.msg_queue = _ServeStoreRequests(assoc)

    def send_msg(self, primitive: Any, context_id: int) -> None:
        encoded = store_response_command(primitive)
        limit = self.maximum_pdu_size
        if (
            encoded is None
            or (limit and len(encoded) > limit - 6)  # would need fragments
            or self.assoc.get_handlers(evt.EVT_DIMSE_SENT)  # someone wants the message object
        ):
            super().send_msg(primitive, context_id)
            return
        pdata = P_DATA()
        pdata.presentation_data_value_list.append((context_id, b"\x03" + encoded))
        self.dul.send_pdu(pdata)  # 0x03: command, last fragment


class _ServeStoreRequests(queue.Queue[Any]):
    """The DIMSE message queue: a C-STORE request is served at once, the rest queued as stock."""

    def __init__(self, assoc: Any) -> None:
        super().__init__()
        self._assoc = assoc

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        context_id, primitive = item
        if type(primitive) is C_STORE and primitive.is_valid_request:
            self._assoc._serve_request(primitive, context_id)
        else:
            super().put(item, block, timeout)


_C_STORE_RSP = 0x8001
_NO_DATA_SET = 0x0101


def store_response_command(primitive: Any) -> bytes | None:
    """The C-STORE-RSP command set (implicit VR little endian) of a status-only response.

    None for anything else (another message, an error comment or offending element), which
    pynetdicom then encodes itself.
    """
    if (
        type(primitive) is not C_STORE
        or primitive.MessageIDBeingRespondedTo is None
        or primitive.Status is None
        or primitive.OffendingElement is not None
        or primitive.ErrorComment is not None
    ):
        return None
    body = b"".join(
        (
            _uid(0x0002, primitive.AffectedSOPClassUID),
            _us(0x0100, _C_STORE_RSP),
            _us(0x0120, primitive.MessageIDBeingRespondedTo),
            _us(0x0800, _NO_DATA_SET),
            _us(0x0900, primitive.Status),
            _uid(0x1000, primitive.AffectedSOPInstanceUID),
        )
    )
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(body)) + body


def _us(element: int, value: int) -> bytes:
    return struct.pack("<HHIH", 0x0000, element, 2, value)


def _uid(element: int, value: Any) -> bytes:
    if value is None:
        return b""  # an absent optional element, as pynetdicom leaves it out
    encoded = str(value).encode("ascii")
    if len(encoded) % 2:
        encoded += b"\x00"
    return struct.pack("<HHI", 0x0000, element, len(encoded)) + encoded
