"""The ingest fast path: same bytes on disk and on the wire as stock pynetdicom."""

from __future__ import annotations

import copy
import queue
import socket
import subprocess
import threading
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid
from pynetdicom.dimse_messages import C_ECHO_RQ, C_STORE_RQ, C_STORE_RSP
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.dsutils import decode, encode

from service.listener import fastpath
from service.listener.limits import AssociationBudget
from service.listener.scp import presentation_contexts
from service.listener.statuses import StoreStatus
from tests.conftest import missing
from tests.e2e.instances import ct_slice
from tests.polling import wait_for
from tests.service.listener.conftest import StartListener
from tests.service.listener.test_scp import STORESCU, scu, spooled, storescu


def store_response(status: int, instance_uid: str) -> C_STORE:
    rsp = C_STORE()
    rsp.MessageID = 7
    rsp.MessageIDBeingRespondedTo = 7
    rsp.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    rsp.AffectedSOPInstanceUID = instance_uid
    rsp.Status = status
    return rsp


@pytest.mark.parametrize("status", [int(s) for s in StoreStatus])
@pytest.mark.parametrize("instance_uid", ["1.2.3.4", "1.2.3.45"])  # even and odd lengths
def test_a_store_response_is_encoded_as_pynetdicom_encodes_it(
    status: int, instance_uid: str
) -> None:
    rsp = store_response(status, instance_uid)
    message = C_STORE_RSP()
    message.primitive_to_message(copy.deepcopy(rsp))
    assert fastpath.store_response_command(rsp) == encode(message.command_set, True, True)


def test_other_responses_are_left_to_pynetdicom() -> None:
    rsp = store_response(0xA900, "1.2.3")
    rsp.ErrorComment = "no pixel data"
    assert fastpath.store_response_command(rsp) is None
    request = store_response(0, "1.2.3")
    request.MessageIDBeingRespondedTo = None
    assert fastpath.store_response_command(request) is None


def test_copies_of_the_contexts_are_independent() -> None:
    contexts = presentation_contexts()
    copies = copy.deepcopy(contexts)
    copies[1].transfer_syntax = copies[1].transfer_syntax[:1]
    copies[1].context_id = 9
    assert len(contexts[1].transfer_syntax) > 1 and contexts[1].context_id is None
    assert [c.abstract_syntax for c in copies] == [c.abstract_syntax for c in contexts]


def large_slice(tmp_path: Path) -> Path:
    """A 1.2 MB instance: several PDUs of 16 KB each on the wire."""
    ds = ct_slice(generate_uid(), generate_uid(), 0, size=768)
    rng = np.random.default_rng(7)
    ds.PixelData = rng.integers(-1024, 3000, (768, 768), dtype=np.int16).tobytes()
    path = tmp_path / "large.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def data_set_bytes(path: Path) -> bytes:
    """The bytes after the file meta information, as written."""
    raw = path.read_bytes()
    meta_length = pydicom.dcmread(
        path, stop_before_pixels=True
    ).file_meta.FileMetaInformationGroupLength
    return raw[128 + 4 + 12 + meta_length :]


@pytest.mark.parametrize("sender", ["storescu", "pynetdicom"])
def test_a_large_instance_arrives_byte_identical_over_many_pdus(
    start_listener: StartListener,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sender: str,
) -> None:
    installed: list[bool] = []
    install = fastpath.install
    monkeypatch.setattr(fastpath, "install", lambda assoc: installed.append(install(assoc)))
    # the listener's maximum PDU bounds what pynetdicom sends; storescu is bounded by its own
    listener, _ = start_listener(quiet_period_s=60, max_pdu_bytes=16384)
    path = large_slice(tmp_path)
    if sender == "storescu":
        if not STORESCU.exists():
            missing("dcmtk's storescu is not installed")
        result = subprocess.run(
            [*storescu(listener.port, "--max-send-pdu", "16384"), str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    else:
        assoc = scu().associate("127.0.0.1", listener.port, ae_title="HABITUS")
        assert assoc.send_c_store(path).Status == StoreStatus.SUCCESS
        assoc.release()
    assert installed == [fastpath.ACTIVE]
    sop_instance_uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
    wait_for(lambda: spooled(listener) == {sop_instance_uid})
    stored = next(listener.spool.received_dir.rglob("*.dcm"))
    assert data_set_bytes(stored) == data_set_bytes(path)
    assert len(data_set_bytes(path)) > 1_000_000


def test_on_another_pynetdicom_version_the_listener_runs_stock(
    start_listener: StartListener, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fastpath, "ACTIVE", False)
    sockets: list[type] = []
    install = fastpath.install

    def spy(assoc: object) -> bool:
        done = install(assoc)
        sockets.append(type(assoc.dul.socket))  # type: ignore[attr-defined]
        return done

    monkeypatch.setattr(fastpath, "install", spy)
    listener, _ = start_listener(quiet_period_s=60)
    path = large_slice(tmp_path)
    assoc = scu().associate("127.0.0.1", listener.port, ae_title="HABITUS")
    assert assoc.is_established
    assert assoc.send_c_store(path).Status == StoreStatus.SUCCESS
    assoc.release()
    assert sockets and fastpath.IngestSocket not in sockets
    stored = next(listener.spool.received_dir.rglob("*.dcm"))
    assert data_set_bytes(stored) == data_set_bytes(path)


def encoded_store_request(**fields: object) -> bytes:
    request = C_STORE()
    request.MessageID = 12
    request.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    request.AffectedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    request.Priority = 1
    request.DataSet = BytesIO(b"\x08\x00\x16\x00")  # any bytes: only the command is encoded
    for name, value in fields.items():
        setattr(request, name, value)
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    return bytes(encode(message.command_set, True, True))


@pytest.mark.parametrize(
    "fields",
    [{}, {"MoveOriginatorApplicationEntityTitle": "PACS", "MoveOriginatorMessageID": 3}],
)
def test_a_store_request_is_read_as_pynetdicom_reads_it(fields: dict[str, object]) -> None:
    command = encoded_store_request(**fields)
    message = C_STORE_RQ()
    message.command_set = decode(BytesIO(command), True, True)
    stock = message.message_to_primitive()
    fast = fastpath.store_request(command)
    assert fast is not None
    for name in (
        "MessageID",
        "AffectedSOPClassUID",
        "AffectedSOPInstanceUID",
        "Priority",
        "MoveOriginatorApplicationEntityTitle",
        "MoveOriginatorMessageID",
    ):
        assert getattr(fast, name) == getattr(stock, name), name


def test_other_commands_are_left_to_pynetdicom() -> None:
    echo = C_ECHO()
    echo.MessageID = 1
    echo.AffectedSOPClassUID = "1.2.840.10008.1.1"
    message = C_ECHO_RQ()
    message.primitive_to_message(echo)
    assert fastpath.store_request(bytes(encode(message.command_set, True, True))) is None
    command = encoded_store_request()
    assert fastpath.store_request(command[:-3]) is None  # cut short


def reading_socket(connection: socket.socket, max_pdu: int = 0) -> fastpath.IngestSocket:
    """An IngestSocket over one end of a socket pair, without an association around it."""
    ingest = object.__new__(fastpath.IngestSocket)
    ingest.socket = connection
    ingest._is_connected = True
    ingest._assoc = SimpleNamespace(
        dul=SimpleNamespace(event_queue=queue.Queue()),
        ae=SimpleNamespace(maximum_pdu_size=max_pdu),
    )
    return ingest


def test_a_pdu_above_the_maximum_is_refused_before_a_buffer_is_sized_by_it() -> None:
    sending, receiving = socket.socketpair()
    ingest = reading_socket(receiving, max_pdu=1024 * 1024)
    try:
        sending.sendall(b"\x04\x00" + (512 * 1024 * 1024).to_bytes(4, "big") + b"x" * 100)
        header = bytes(ingest.recv(6))
        announced = int.from_bytes(header[2:], "big")
        assert bytes(ingest.recv(announced)) == b""  # cut off: the DUL closes the transport
        assert ingest._buffer is not None and len(ingest._buffer) <= 2 * 1024 * 1024
        assert not ingest._is_connected
        # the peer is told: A-ABORT, service provider, invalid PDU parameter value
        assert sending.recv(64) == b"\x07\x00\x00\x00\x00\x04\x00\x00\x02\x06"
    finally:
        sending.close()
        receiving.close()


def test_without_a_maximum_the_buffer_grows_only_with_the_bytes_that_arrive() -> None:
    sending, receiving = socket.socketpair()
    ingest = reading_socket(receiving, max_pdu=0)

    def send_and_close() -> None:  # announced 512 MiB, sends 3 MB
        sending.sendall(b"x" * 3_000_000)
        sending.close()

    sender = threading.Thread(target=send_and_close)
    sender.start()
    try:
        assert len(bytes(ingest.recv(512 * 1024 * 1024))) == 3_000_000
        assert ingest._buffer is not None and len(ingest._buffer) <= 8 * 1024 * 1024
    finally:
        sender.join(timeout=10)
        receiving.close()


def test_read_ahead_returns_each_pdu_whole_however_the_bytes_arrive() -> None:
    sizes = [6, 131_072, 6, 5_000_000, 6, 10]  # one PDU larger than any buffer kept
    messages = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    stream = b"".join(messages)
    sending, receiving = socket.socketpair()
    chunks = np.random.default_rng(3).integers(1, 300_000, size=len(stream) // 1000)

    def send_in_odd_pieces() -> None:
        position = 0
        for chunk in chunks:
            sending.sendall(stream[position : position + int(chunk)])
            position += int(chunk)
            if position >= len(stream):
                break
        sending.sendall(stream[position:])
        sending.close()

    sender = threading.Thread(target=send_in_odd_pieces)
    sender.start()
    ingest = reading_socket(receiving)
    try:
        for message in messages:
            assert ingest.ready
            assert bytes(ingest.recv(len(message))) == message
        assert bytes(ingest.recv(6)) == b""  # the peer closed: nothing more, as stock
    finally:
        sender.join()
        receiving.close()


def test_read_ahead_answers_ready_from_its_buffer_without_the_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sending, receiving = socket.socketpair()
    ingest = reading_socket(receiving)
    try:
        sending.sendall(b"\x04\x00\x00\x00\x00\x02ab" + b"\x05\x00\x00\x00\x00\x00")
        assert bytes(ingest.recv(6)) == b"\x04\x00\x00\x00\x00\x02"

        def no_select(*args: object) -> None:
            raise AssertionError("select called although the next PDU was already read")

        monkeypatch.setattr(fastpath.select, "select", no_select)
        assert ingest.ready
        assert bytes(ingest.recv(2)) == b"ab"
        assert ingest.ready
        assert bytes(ingest.recv(6)) == b"\x05\x00\x00\x00\x00\x00"
    finally:
        sending.close()
        receiving.close()


def test_what_was_read_ahead_is_dropped_when_the_connection_closes() -> None:
    sending, receiving = socket.socketpair()
    ingest = reading_socket(receiving)
    try:
        sending.sendall(b"\x05\x00\x00\x00\x00\x04" + b"\x07\x00\x00\x00\x00\x04")
        assert bytes(ingest.recv(6)) == b"\x05\x00\x00\x00\x00\x04"  # the rest read ahead
        ingest.close()  # e.g. after an abort: the rest must not be read as if still connected
        assert not ingest.ready
    finally:
        sending.close()


def test_a_data_set_beyond_the_association_budget_is_dropped_as_it_arrives() -> None:
    dimse = object.__new__(fastpath.IngestDIMSE)
    dimse.budget = AssociationBudget(max_bytes=1000, max_instances=0)
    kept = BytesIO()
    for _ in range(3):
        dimse._append(kept, memoryview(b"x" * 300))
    assert kept.getvalue() == b"x" * 900  # within the budget: kept
    dropped = BytesIO()
    dimse.budget.charge(900)
    for _ in range(1000):  # 300 kB more: nothing of it is held
        dimse._append(dropped, memoryview(b"y" * 300))
        assert dropped.tell() <= 100
    assert dimse.budget.take_dropped() == 300_000
    assert dimse.budget.take_dropped() == 0  # counted once
