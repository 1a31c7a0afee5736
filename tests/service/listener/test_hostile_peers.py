"""The listener against hostile peers, over TCP, in a process of its own.

Each attack must be refused with the right DICOM answer and a log line, while a well-behaved
peer's study arrives whole and the listener's memory stays within bounds. Attackers use
other loopback addresses (127.0.0.2 and up) as their source, as other hosts would.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    generate_uid,
)
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from service.listener.filemeta import file_meta
from service.listener.statuses import StoreStatus
from tests.e2e.instances import ct_series, ct_slice
from tests.polling import wait_for
from tests.tls_support import write_certificate

ROOT = Path(__file__).resolve().parents[3]
MIB = 1024 * 1024
LOCAL_LIMIT = (0x02, 0x03, 0x02)  # A-ASSOCIATE-RJ: transient, service-provider, local limit
UNKNOWN_CALLER = (0x01, 0x01, 0x03)  # permanent, service-user, calling AE not recognised


@dataclass
class RunningListener:
    process: subprocess.Popen[str]
    port: int
    spool: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def memory_kib(self, field: str) -> int:
        """VmRSS (resident now) or VmHWM (the most it has been resident) of the process."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{field} not in /proc/{self.process.pid}/status")

    def spooled(self) -> set[str]:
        return {p.stem for p in (self.spool / "received").rglob("*.dcm")}

    def wait_for_log(self, text: str, timeout: float = 5.0) -> None:
        try:
            wait_for(lambda: text in self.log(), timeout)
        except AssertionError:
            raise AssertionError(f"no log line with {text!r}:\n{self.log()}") from None


RunListener = Callable[..., RunningListener]


@pytest.fixture
def run_listener(tmp_path: Path) -> Iterator[RunListener]:
    running: list[RunningListener] = []

    def start(nodes: list[dict[str, Any]] | None = None, **settings: Any) -> RunningListener:
        name = f"listener{len(running)}"
        values: dict[str, Any] = {
            "ae_title": "HABITUS",
            "host": "127.0.0.1",
            "port": 0,
            "spool_dir": tmp_path / name / "spool",
            "quiet_period_s": 600,  # nothing is submitted: the spool shows what arrived
            "quiet_after_release_s": 600,
            "spool_min_free_bytes": 0,
            **settings,
        }
        env = dict(os.environ)
        for key, value in values.items():
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
            env[f"HABITUS_LISTENER_{key.upper()}"] = text
        env["HABITUS_TEST_NODES"] = json.dumps(nodes or [])
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        log_path = tmp_path / f"{name}.log"
        with log_path.open("w") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.service.listener.hostile_listener"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip().isdigit(), f"the listener did not start:\n{log_path.read_text()}"
        listener = RunningListener(process, int(line), Path(values["spool_dir"]), log_path)
        running.append(listener)
        return listener

    yield start
    for listener in running:
        assert listener.process.stdin is not None
        listener.process.stdin.close()
        try:
            listener.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            listener.process.kill()


def scu(ae_title: str, transfer_syntax: str = ExplicitVRLittleEndian) -> AE:
    ae = AE(ae_title=ae_title)
    # a listener that does not answer in time fails the test
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = 5
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage, transfer_syntax)
    return ae


def associate(
    listener: RunningListener,
    ae_title: str,
    source: str = "127.0.0.1",
    transfer_syntax: str = ExplicitVRLittleEndian,
    tls: ssl.SSLContext | None = None,
) -> tuple[Association, list[tuple[int, int, int]]]:
    """An association from ``source``, and the (result, source, reason) of any rejection."""
    rejections: list[tuple[int, int, int]] = []

    def on_acse(event: Any) -> None:
        primitive = event.primitive
        if getattr(primitive, "result", None) in (0x01, 0x02):
            rejections.append((primitive.result, primitive.result_source, primitive.diagnostic))

    assoc = scu(ae_title, transfer_syntax).associate(
        "127.0.0.1",
        listener.port,
        ae_title="HABITUS",
        bind_address=(source, 0),
        tls_args=(tls, "127.0.0.1") if tls else None,
        evt_handlers=[(evt.EVT_ACSE_RECV, on_acse)],
    )
    return assoc, rejections


def raw_connection(listener: RunningListener, source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", listener.port))
    return sock


def wait_closed(sockets: list[socket.socket], timeout: float) -> list[socket.socket]:
    """Read from each socket until the listener closes it; return those still open."""
    still = list(sockets)
    deadline = time.monotonic() + timeout
    while still and time.monotonic() < deadline:
        readable, _, _ = select.select(still, [], [], 0.2)
        for sock in readable:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                data = b""
            if not data:
                still.remove(sock)
    return still


class WellBehavedPeer(threading.Thread):
    """Sends a study slice by slice, pausing between slices, while the attacks go on."""

    def __init__(self, listener: RunningListener, slices: int = 40) -> None:
        super().__init__(name="well-behaved-peer")
        self.listener = listener
        self.series = ct_series(slices, size=64)
        self.statuses: list[int] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            assoc, _ = associate(self.listener, "GOODSCU")
            assert assoc.is_established
            for ds in self.series:
                self.statuses.append(int(assoc.send_c_store(ds).Status))
                time.sleep(0.05)
            assoc.release()
        except BaseException as exc:  # reported by the test
            self.error = exc


def deflate_bomb(tmp_path: Path) -> Path:
    """A part-10 file whose deflated data set inflates to 256 MiB (about 256 KB as sent)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(16 * MIB)
    bomb = b"".join(deflater.compress(zeros) for _ in range(16)) + deflater.flush()
    path = tmp_path / "bomb.dcm"
    meta = file_meta(CTImageStorage, generate_uid(), DeflatedExplicitVRLittleEndian, "BOMB")
    path.write_bytes(meta + bomb)
    return path


def large_slice(size: int) -> Dataset:
    """A CT slice of ``size`` x ``size`` 16-bit pixels."""
    return ct_slice(generate_uid(), generate_uid(), 0, size=size)


def test_attacks_are_refused_while_a_study_arrives_whole(
    run_listener: RunListener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = run_listener(
        nodes=[{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 104}],
        allowed_ae_titles=["GOODSCU", "FLOOD", "BIG", "BOMB"],
        max_associations=16,
        max_associations_per_host=4,
        max_association_bytes=int(1.5 * MIB),
        network_timeout_s=2,
        acse_timeout_s=1,
    )
    idle_kib = listener.memory_kib("VmRSS")
    peer = WellBehavedPeer(listener)
    peer.start()

    # a 6-byte PDU header announcing 4 GiB: A-ABORT, then the connection closes
    sock = raw_connection(listener, "127.0.0.5")
    sock.sendall(b"\x01\x00\xff\xff\xff\xff")
    answer = sock.recv(64)
    assert answer[:1] == b"\x07", answer  # A-ABORT PDU
    assert not wait_closed([sock], timeout=5)
    listener.wait_for_log("exceeds the maximum of 1048576: A-ABORT sent")

    # 200 connections from one host that never ask for an association: all are closed,
    # most at once, those within the per-host connection limit after the ACSE timeout
    idle = [raw_connection(listener, "127.0.0.2") for _ in range(200)]
    # half-open: an association request announced and never finished
    half_open = [raw_connection(listener, "127.0.0.6") for _ in range(3)]
    for sock in half_open:
        sock.sendall(b"\x01\x00\x00\x00\x03\xe8" + b"\x00" * 10)  # 1000 bytes announced
    assert not wait_closed(idle + half_open, timeout=8)
    listener.wait_for_log("connection from 127.0.0.2 closed at once: 8 connections open")
    # their places are free again once they are closed
    again, _ = associate(listener, "FLOOD", source="127.0.0.2")
    assert again.is_established
    again.release()

    # a flood of associations from one host: four are admitted, the rest rejected
    flood = [associate(listener, "FLOOD", source="127.0.0.3") for _ in range(6)]
    admitted = [assoc for assoc, _ in flood if assoc.is_established]
    assert len(admitted) == 4
    assert [rejections for assoc, rejections in flood if not assoc.is_established] == [
        [LOCAL_LIMIT],
        [LOCAL_LIMIT],
    ]
    listener.wait_for_log("4 associations already open from 127.0.0.3 (maximum 4 per host)")
    assert listener.log().count("associations already open from 127.0.0.3") == 1  # no flood
    for assoc in admitted:
        assoc.release()

    # a known node's AE title from another host
    spoofed, rejections = associate(listener, "PACS", source="127.0.0.7")
    assert spoofed.is_rejected and rejections == [UNKNOWN_CALLER]
    listener.wait_for_log("calling AE title 'PACS' must connect from 127.0.0.1")

    # a deflate bomb: refused as undecodable, never inflated whole
    bomb = deflate_bomb(tmp_path)
    bomber, _ = associate(listener, "BOMB", transfer_syntax=DeflatedExplicitVRLittleEndian)
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # send the file's bytes
    assert bomber.send_c_store(bomb).Status == StoreStatus.ERROR_CANNOT_UNDERSTAND
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", False)
    bomber.release()
    listener.wait_for_log("inflates to more than 67108864 bytes")

    # beyond the association's byte budget: 0xA700 for each further instance, and the
    # association goes on
    big, _ = associate(listener, "BIG")
    first, second = large_slice(724), large_slice(724)  # about 1 MiB each
    assert big.send_c_store(first).Status == StoreStatus.SUCCESS
    assert big.send_c_store(second).Status == StoreStatus.REFUSED_OUT_OF_RESOURCES
    assert big.send_c_echo().Status == 0x0000
    big.release()
    listener.wait_for_log("more than the 1572864 one association may send")

    peer.join(timeout=60)
    assert peer.error is None, peer.error
    assert peer.statuses == [StoreStatus.SUCCESS] * len(peer.series)
    expected = {ds.SOPInstanceUID for ds in peer.series} | {first.SOPInstanceUID}
    assert listener.spooled() == expected  # the study whole, and nothing refused kept
    peak_kib = listener.memory_kib("VmHWM")
    assert peak_kib < idle_kib + 300 * 1024, (idle_kib, peak_kib)
    assert listener.process.poll() is None  # still serving


def test_spool_full_and_instance_limit_refuse_without_losing_what_was_acknowledged(
    run_listener: RunListener,
) -> None:
    listener = run_listener(
        allowed_ae_titles=["TESTSCU"], max_association_instances=5, spool_max_bytes=200_000
    )
    series = ct_series(8, size=64)  # about 9 KB each
    assoc, _ = associate(listener, "TESTSCU")
    statuses = [int(assoc.send_c_store(ds).Status) for ds in series]
    assert assoc.is_established
    assoc.release()
    assert statuses == [StoreStatus.SUCCESS] * 5 + [StoreStatus.REFUSED_OUT_OF_RESOURCES] * 3
    listener.wait_for_log("more than the 5 one association may send")
    assert listener.log().count("one association may send") == 1  # no log flood per peer

    # another association fills the spool: refused once full, what was taken stays
    acknowledged = {ds.SOPInstanceUID for ds in series[:5]}
    assoc, _ = associate(listener, "TESTSCU")
    refused = 0
    for ds in ct_series(5, size=128):  # about 33 KB each
        status = int(assoc.send_c_store(ds).Status)
        if status == StoreStatus.SUCCESS:
            acknowledged.add(ds.SOPInstanceUID)
        else:
            assert status == StoreStatus.REFUSED_OUT_OF_RESOURCES
            refused += 1
    assoc.release()
    assert refused >= 1
    listener.wait_for_log("more would pass its maximum of 200000")
    assert listener.spooled() == acknowledged


def test_a_peer_with_another_nodes_certificate_is_refused(
    run_listener: RunListener, tmp_path: Path
) -> None:
    ca = write_certificate(tmp_path, "ca")
    server_cert, server_key, *_ = write_certificate(tmp_path, "server", issuer=ca)
    pacs_cert, pacs_key, *_ = write_certificate(tmp_path, "pacs-node", issuer=ca)
    ris_cert, ris_key, *_ = write_certificate(tmp_path, "ris-node", issuer=ca)
    ris_der = ssl.PEM_cert_to_DER_cert(ris_cert.read_text())
    listener = run_listener(
        nodes=[
            {"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 104},
            {"name": "ris", "ae_title": "RIS", "host": "127.0.0.1", "port": 104},
        ],
        tls_cert_file=server_cert,
        tls_key_file=server_key,
        tls_ca_file=ca[0],
        node_certificates={
            "pacs": "cn:pacs-node",
            "ris": "sha256:" + hashlib.sha256(ris_der).hexdigest(),
        },
    )

    def client(cert: Path, key: Path) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca[0]))
        context.load_cert_chain(cert, key)
        return context

    # a silent TLS connection delays nobody: the handshake is not on the accepting thread
    silent = raw_connection(listener, "127.0.0.4")

    # the CA signed it, but it is the RIS's certificate calling as the PACS
    stolen, rejections = associate(listener, "PACS", tls=client(ris_cert, ris_key))
    assert stolen.is_rejected and rejections == [UNKNOWN_CALLER]
    listener.wait_for_log("belongs to node pacs, whose certificate is not the peer's")
    listener.wait_for_log("CN=ris-node")
    assert not listener.spooled()

    # each node with its own certificate is admitted
    for ae_title, cert, key in (("PACS", pacs_cert, pacs_key), ("RIS", ris_cert, ris_key)):
        assoc, _ = associate(listener, ae_title, tls=client(cert, key))
        assert assoc.is_established, ae_title
        assert assoc.send_c_store(ct_series(1)[0]).Status == StoreStatus.SUCCESS
        assoc.release()
    assert len(listener.spooled()) == 2
    silent.close()
