"""pynetdicom's acceptor tuned for C-STORE throughput: the one module that reaches inside it.

Measured with ``bench/bench_ingest.py`` (200 slices of 512 x 512, 2-core shared machine), a
bare pynetdicom 3.0.4 SCP that keeps nothing took 5 to 9 ms per instance; dcmtk's storescp,
writing each file, 2 to 2.5 ms. Profiles of the listener showed where pynetdicom's time goes:

- both of an association's threads poll with ``time.sleep(0.001)`` (up to 2 ms on a busy
  machine): data waiting on the socket, a decoded C-STORE request waiting for the association
  thread and its response waiting for the network (DUL) thread each lose up to one sleep,
  and idle associations keep waking up (four idle ones took 29% of a CPU; tuned, 11%);
- the C-STORE request's command set is decoded, and its response's built and encoded twice,
  through pydicom data sets (about 1.5 ms together);
- the socket is read 4096 bytes at a time;
- every association starts with a deep copy of the server's presentation contexts, which
  rebuilds and re-validates each UID: some 2,400 for the listener's 171 contexts, 35 ms or
  more of the one CPU that all associations share.

``install`` (called on EVT_CONN_OPEN, before the association's threads start, for the
listener's own associations only) changes, per association:

1. the DUL thread waits in ``select`` on its socket instead of sleeping: ``IngestSocket.ready``
   returns as soon as a PDU arrives (else after ``POLL_S``); the DUL's own ``_run_loop_delay``
   becomes 0 so that the wait happens there and only there;
2. ``IngestSocket`` reads ahead: each read takes what the kernel holds (up to 1 MiB) into one
   reused buffer and PDUs are served from it, so ``ready`` and ``recv`` often need no system
   call (and no hand-over of the GIL);
3. a C-STORE request is served on the DUL thread the moment its last fragment is decoded,
   instead of waiting for the association thread's next poll; its response then leaves on the
   DUL's next loop, with no hand-over between threads (other requests, C-ECHO included, take
   the stock path). The handler is the same either way: it writes and answers, nothing heavy;
4. a C-STORE request's command set is read in place (``store_request``) and its data set
   fragments appended as they arrive, instead of a pydicom data set built and converted;
   any other message, or one this does not understand, is decoded by pynetdicom;
5. a C-STORE response that carries only a status is encoded directly (PS3.7 9.3.1.2; a test
   compares it byte for byte with pynetdicom's encoding); any other response is pynetdicom's;
6. its association thread, which now only watches for a release, an abort or another kind of
   message, polls every ``POLL_S`` (``_ReactorClock``).

Besides, the listener's presentation contexts are ``IngestContext``: copied per association in
microseconds. Everything here relies on pynetdicom internals of one version
(``SUPPORTED_VERSION``): on any other version nothing is changed and the listener runs stock
pynetdicom, slower.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import queue
import select
import ssl
import struct
import threading
import time
from io import BytesIO
from typing import Any

import pynetdicom
import pynetdicom.association as pynetdicom_association
from pynetdicom import _config, evt
from pynetdicom._handlers import (
    standard_dimse_recv_handler,
    standard_dimse_sent_handler,
    standard_pdu_recv_handler,
    standard_pdu_sent_handler,
)
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import AssociationSocket

from service.listener.limits import AssociationBudget

log = logging.getLogger(__name__)
LOGGER_DIMSE = logging.getLogger("pynetdicom.dimse")  # where pynetdicom reports the same

SUPPORTED_VERSION = "3.0.4"
ACTIVE = pynetdicom.__version__ == SUPPORTED_VERSION
"""Whether ``install`` tunes associations here; False: stock pynetdicom throughout."""

POLL_S = 0.005
"""Longest idle wait of a tuned association's two threads: the DUL for socket data (it wakes
at once when data comes), the association thread between its checks for a release, an abort
or a message other than C-STORE. Stock: 1 ms for both, which kept four idle associations
busy waking up, a third of a CPU on the 2-core machine of the benchmark."""

_STOCK_REACTOR_SLEEP = 0.001  # pynetdicom.association: Association._run_reactor's poll


class _ReactorClock:
    """Stands in for the ``time`` module inside ``pynetdicom.association``.

    Its reactor loop sleeps ``time.sleep(0.001)`` between checks; on the threads of tuned
    associations (whose C-STORE requests no longer pass through it) that sleep lasts
    ``POLL_S``. Every other sleep, and every other association's, is the stock one.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        if seconds == _STOCK_REACTOR_SLEEP and getattr(
            threading.current_thread(), "_ingest_tuned", False
        ):
            seconds = POLL_S
        time.sleep(seconds)


if ACTIVE:
    pynetdicom_association.time = _ReactorClock()  # type: ignore[assignment]

_KEEP_BUFFER_UP_TO = 4 * 1024 * 1024
"""Bytes: a receive buffer up to this size is kept for the association's next PDUs."""

_READ_AHEAD = 1024 * 1024
"""Bytes asked of the kernel per read: several of the largest PDUs senders use (dcmtk's
default is 128 KiB when the listener, as by default, sets no maximum)."""

_ASSOCIATION_PDU_MAX = 64 * 1024
"""Bytes a PDU may announce whatever the maximum PDU setting: association requests, with
their presentation contexts and user identity, stay far below this."""

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
    """Unbind pynetdicom's standard logging handlers from one association, unless its logger
    is at DEBUG (then someone is looking at negotiation and message details).

    They log every message (an INFO line per C-STORE) and copy each received data set to
    report whether it is present; the listener logs what matters itself. Public API, any
    version.
    """
    if logging.getLogger("pynetdicom").isEnabledFor(logging.DEBUG):
        return
    for event, handler in (
        (evt.EVT_DIMSE_RECV, standard_dimse_recv_handler),
        (evt.EVT_DIMSE_SENT, standard_dimse_sent_handler),
        (evt.EVT_PDU_RECV, standard_pdu_recv_handler),
        (evt.EVT_PDU_SENT, standard_pdu_sent_handler),
    ):
        assoc.unbind(event, handler)


def install(assoc: Any) -> bool:
    """Tune one acceptor association before its threads start; False where not supported."""
    global _warned
    if not ACTIVE:
        if not _warned:
            _warned = True
            log.warning(
                "ingest fast path off (written for pynetdicom %s, running %s): stock pynetdicom",
                SUPPORTED_VERSION,
                pynetdicom.__version__,
            )
        return False
    if assoc.is_alive() or not isinstance(assoc.dul.socket, AssociationSocket):
        return False  # already running, or not a socket this module knows
    assoc.dimse = IngestDIMSE(assoc)
    assoc.dul.socket.__class__ = IngestSocket  # same object, queued connection event kept
    assoc.dul._run_loop_delay = 0  # the DUL now waits in IngestSocket.ready
    assoc._ingest_tuned = True  # its reactor polls every POLL_S (_ReactorClock)
    return True


def limit_data_sets(assoc: Any, budget: AssociationBudget) -> bool:
    """Drop the data sets of a tuned association as they arrive once ``budget`` is spent,
    instead of holding them in memory to refuse them; False where it is not tuned."""
    if not isinstance(assoc.dimse, IngestDIMSE):
        return False
    assoc.dimse.budget = budget
    return True


class IngestSocket(AssociationSocket):
    """An association socket that waits for data instead of polling, and reads ahead.

    Each read takes whatever the kernel holds, up to ``_READ_AHEAD`` bytes, into one reused
    buffer, and PDUs are served from it instead of a ``select`` and two reads per PDU. Counted
    with strace for 0.5 MB instances in 128 KiB PDUs: 2.5 reads and 2.1 selects an instance
    over four associations (12 and 6 before), 5.2 reads over one, where the listener keeps
    up with the sender. Each call saved is one hand-over of the GIL fewer between the
    associations' threads.
    """

    _buffer: bytearray | None = None
    _start = 0  # first unread byte in _buffer
    _end = 0  # one past the last byte read into _buffer

    @property
    def ready(self) -> bool:
        sock = self.socket
        if sock is None or self._is_connected is False:
            self._start = self._end = 0  # closed: what was read ahead is dropped, as stock
            time.sleep(POLL_S)  # keep the DUL loop paced while the connection winds down
            return False
        if self._end > self._start:
            return True  # read ahead: no need to ask the kernel
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True  # decrypted bytes already buffered: select would not see them
        try:
            readable, _, _ = select.select([sock], [], [], POLL_S)
        except (OSError, TimeoutError, ValueError):
            self.event_queue.put("Evt17")  # transport connection closed, as stock
            return False
        return bool(readable)

    def recv(self, nr_bytes: int) -> bytearray:
        """Return the next ``nr_bytes`` (fewer if the peer closes), reading ahead.

        The caller copies the result at once; the view returned is only valid until the
        next call.
        """
        limit = _pdu_limit(self.assoc)
        if limit and nr_bytes > limit:
            # Refused before any buffer is sized by it: an A-ABORT tells the peer, and the
            # DUL, seeing a PDU cut short, closes the transport.
            log.warning(
                "a PDU of %d bytes announced by %s exceeds the maximum of %d: A-ABORT sent, "
                "connection closed",
                nr_bytes,
                _peer(self.socket),
                limit,
            )
            self._send_abort()
            self._is_connected = False
            return bytearray()
        if self._end - self._start < nr_bytes:
            self._fill(nr_bytes)
        start = self._start
        count = min(nr_bytes, self._end - start)
        self._start = start + count
        assert self._buffer is not None
        return memoryview(self._buffer)[start : start + count]  # type: ignore[return-value]

    def _send_abort(self) -> None:
        """A-ABORT from the service provider, reason: invalid PDU parameter value (PS3.8
        9.3.8), sent straight to the socket: the state machine waits for the rest of the PDU."""
        abort = A_ABORT_RQ()
        abort.source = 0x02
        abort.reason_diagnostic = 0x06
        with contextlib.suppress(OSError, AttributeError):
            self.socket.sendall(abort.encode())  # type: ignore[union-attr]

    def _fill(self, nr_bytes: int) -> None:
        """Read until ``nr_bytes`` unread bytes are buffered, or the peer has closed.

        The buffer grows with the bytes that arrive (doubling, up to ``nr_bytes``), never to
        the length a peer announces before sending it.
        """
        sock = self.socket
        assert sock is not None
        unread = self._end - self._start
        capacity = max(min(nr_bytes, unread + _READ_AHEAD), _READ_AHEAD)
        old = self._buffer
        # a new buffer where the old one is too small, or is a huge PDU's not to be kept
        if old is None or len(old) < capacity or len(old) > max(capacity, _KEEP_BUFFER_UP_TO):
            buffer = bytearray(capacity)
            if old is not None and unread:
                buffer[:unread] = old[self._start : self._end]
        else:
            buffer = old
            if unread and self._start:
                buffer[:unread] = buffer[self._start : self._end]  # the partial PDU first
        end = unread
        while end < nr_bytes:
            if end == len(buffer):  # full: grow by what has arrived, up to what is asked
                grown = bytearray(min(2 * len(buffer), nr_bytes))
                grown[:end] = buffer[:end]  # a copy: views handed out earlier stay valid
                buffer = grown
            count = sock.recv_into(memoryview(buffer)[end:], len(buffer) - end)
            if not count:
                break  # connection closed: return what arrived, as stock
            end += count
        self._buffer, self._start, self._end = buffer, 0, end


def _peer(sock: Any) -> str:
    try:
        peer = sock.getpeername()
    except (AttributeError, OSError):
        return "a peer"
    return str(peer[0]) if isinstance(peer, tuple) else str(peer or "a local peer")


def _pdu_limit(assoc: Any) -> int:
    """The largest PDU the listener accepts (0: no limit): its maximum PDU setting, which
    it announces to peers, and never less than an association request needs."""
    maximum = int(getattr(getattr(assoc, "ae", None), "maximum_pdu_size", 0) or 0)
    return max(maximum, _ASSOCIATION_PDU_MAX) if maximum else 0


class IngestDIMSE(DIMSEServiceProvider):
    """Serves C-STORE requests where they are decoded; encodes status-only responses directly."""

    def __init__(self, assoc: Any) -> None:
        super().__init__(assoc)
        self.msg_queue = _ServeStoreRequests(assoc)
        self._store: tuple[int, C_STORE, BytesIO] | None = None  # request being received
        # what the association may still send (``limit_data_sets``); None: no limit here
        self.budget: AssociationBudget | None = None

    def receive_primitive(self, primitive: P_DATA) -> None:
        """Decode a C-STORE request directly; leave every other message to pynetdicom.

        The request's command set (a dozen elements) is read in place instead of through a
        pydicom data set, and its data set fragments are appended as they come.
        """
        pdvs = primitive.presentation_data_value_list
        if self._store is None:
            if (
                self.message is not None  # a message pynetdicom is decoding
                or _config.STORE_RECV_CHUNKED_DATASET
                or self.assoc.get_handlers(evt.EVT_DIMSE_RECV)  # someone wants the message
                or not pdvs
                or pdvs[0][1][0] & 3 != 3  # not a command in one fragment
            ):
                super().receive_primitive(primitive)
                return
            request = store_request(pdvs[0][1][1:])
            if request is None:
                super().receive_primitive(primitive)
                return
            context_id = pdvs[0][0]
            request._context_id = context_id
            self._store = (context_id, request, BytesIO())
            pdvs = pdvs[1:]
        for index, (_, data) in enumerate(pdvs):
            context_id, request, data_set = self._store
            if data[0] & 1:  # a command while the data set is incomplete
                LOGGER_DIMSE.error("A command fragment arrived inside a C-STORE data set")
                self.dul.event_queue.put("Evt19")  # invalid PDU: abort, as pynetdicom does
                return
            self._append(data_set, memoryview(data)[1:])
            if data[0] & 2:  # the data set's last fragment
                self._store = None
                request.DataSet = data_set
                self.msg_queue.put((context_id, request))
                if index + 1 < len(pdvs):  # the next message starts in the same PDU
                    rest = P_DATA()
                    rest.presentation_data_value_list = pdvs[index + 1 :]
                    self.receive_primitive(rest)
                return

    def _append(self, data_set: BytesIO, fragment: memoryview) -> None:
        """Keep a data set fragment, unless the association's budget is spent: then only
        its size is counted (the handler refuses the instance) and what was kept goes."""
        budget = self.budget
        if budget is not None and (
            budget.dropped or not budget.may_receive(data_set.tell() + len(fragment))
        ):
            budget.dropped += data_set.tell() + len(fragment)
            data_set.seek(0)
            data_set.truncate()
            return
        data_set.write(fragment)

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


_C_STORE_RQ = 0x0001
_C_STORE_RSP = 0x8001
_NO_DATA_SET = 0x0101
_REQUEST_FIELDS = {
    0x0002: "AffectedSOPClassUID",
    0x0110: "MessageID",
    0x0700: "Priority",
    0x1000: "AffectedSOPInstanceUID",
    0x1030: "MoveOriginatorApplicationEntityTitle",
    0x1031: "MoveOriginatorMessageID",
}
_US_FIELDS = frozenset({0x0100, 0x0110, 0x0700, 0x0800, 0x1031})


def store_request(command: bytes) -> C_STORE | None:
    """The C-STORE request in an encoded command set (implicit VR little endian).

    None for any other command, a C-STORE without a data set, or anything malformed:
    pynetdicom then decodes the message itself and answers as it would.
    """
    values: dict[int, int | str] = {}
    pos, end = 0, len(command)
    while pos < end:
        if pos + 8 > end:
            return None
        group, element, length = struct.unpack_from("<HHI", command, pos)
        pos += 8
        if group != 0x0000 or pos + length > end:
            return None
        value = command[pos : pos + length]
        pos += length
        if element in _US_FIELDS:
            if length != 2:
                return None
            values[element] = int.from_bytes(value, "little")
        elif element in _REQUEST_FIELDS:
            values[element] = value.decode("ascii", "replace").rstrip("\x00 ")
    if values.get(0x0100) != _C_STORE_RQ or values.get(0x0800, _NO_DATA_SET) == _NO_DATA_SET:
        return None
    request = C_STORE()
    try:
        for element, keyword in _REQUEST_FIELDS.items():
            if element in values and values[element] != "":
                setattr(request, keyword, values[element])
    except (TypeError, ValueError):  # a value pynetdicom would refuse: its own path decides
        return None
    return request


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
