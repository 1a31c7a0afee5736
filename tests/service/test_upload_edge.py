"""Hostile uploads against the API served by uvicorn: each is answered quickly, costs the
server little CPU and memory, leaves nothing behind, and other clients go on meanwhile."""

from __future__ import annotations

import io
import socket
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.service.live_api import LiveApi, live_api
from tests.service.support import API_KEY, AUTH, zip_files

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
GIB = 1024 * MIB
IDLE_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with live_api(
        tmp_path_factory.mktemp("edge"),
        HABITUS_UPLOAD_IDLE_TIMEOUT_S=str(IDLE_TIMEOUT_S),
        HABITUS_UPLOAD_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        HABITUS_MAX_UPLOAD_BYTES=str(64 * MIB),
    ) as running:
        yield running


def deflate_repeated(chunk_bytes: int, repeats: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``chunk_bytes * repeats`` zero bytes, and their CRC-32, made
    without deflating them all: after a full flush the compressor starts afresh, so every
    chunk compresses to the same bytes."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    zeros = bytes(chunk_bytes)
    segment = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(repeats):
        crc = zlib.crc32(zeros, crc)
    return segment * repeats + compressor.flush(), crc


def raw_zip(entries: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of deflated entries (name, deflate stream, CRC-32, declared size), written by
    hand so that the directory can declare what the test wants."""
    out = io.BytesIO()
    directory = []
    for name, data, crc, size in entries:
        encoded, offset = name.encode(), out.tell()
        out.write(
            struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), size,
                        len(encoded), 0)
            + encoded + data
        )  # fmt: skip
        directory.append(
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(data),
                        size, len(encoded), 0, 0, 0, 0, 0, offset)
            + encoded
        )  # fmt: skip
    start, central = out.tell(), b"".join(directory)
    out.write(central)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                          len(central), start, 0))  # fmt: skip
    return out.getvalue()


def post(api: LiveApi, body: bytes, content_type: str, timeout: float = 30) -> httpx.Response:
    return httpx.post(
        f"{api.url}/v1/studies",
        content=body,
        headers={**AUTH, "Content-Type": content_type},
        timeout=timeout,
    )


def measured(api: LiveApi, body: bytes, content_type: str) -> tuple[httpx.Response, float, float]:
    """The answer, the seconds it took and the server's CPU seconds meanwhile."""
    cpu, start = api.cpu_seconds(), time.monotonic()
    response = post(api, body, content_type)
    return response, time.monotonic() - start, api.cpu_seconds() - cpu


def test_a_zip_bomb_is_refused_from_its_directory(api: LiveApi) -> None:
    data, crc = deflate_repeated(3 * MIB, 1)
    bomb = raw_zip([(f"{i:04d}.dcm", data, crc, 3 * MIB) for i in range(1024)])
    assert len(bomb) < 4 * MIB  # about 3 MB that would unpack to 3 GiB:
    assert zipfile.ZipFile(io.BytesIO(bomb)).read("0001.dcm") == bytes(3 * MIB)  # a real one
    rss = api.peak_rss_bytes()
    response, seconds, cpu = measured(api, bomb, "application/zip")
    assert response.status_code == 413, response.text
    assert "at most 200 times its size" in response.json()["detail"]
    assert seconds < 2 and cpu < 5, (seconds, cpu)
    assert api.peak_rss_bytes() - rss < 64 * MIB
    assert api.leftovers() == []


def test_a_zip_whose_directory_lies_is_cut_at_the_declared_size(api: LiveApi) -> None:
    data, crc = deflate_repeated(16 * MIB, 64)  # 1 GiB of zeros, declared as 1000 bytes
    lying = raw_zip([("a.dcm", data, crc, 1000)])
    response, seconds, cpu = measured(api, lying, "application/zip")
    assert response.status_code == 400, response.text
    assert "zip entry 'a.dcm' cannot be read" in response.json()["detail"]
    assert seconds < 2 and cpu < 1, (seconds, cpu)  # inflating the GiB takes seconds
    assert api.leftovers() == []


def test_a_non_dicom_file_is_refused_without_a_parse(api: LiveApi) -> None:
    # 3 million well-formed implicit-VR elements: a lenient parser would read every one
    elements = struct.pack("<HHI", 0x0008, 0x0010, 2) + b"AB"
    response, seconds, cpu = measured(api, elements * 3_000_000, "application/dicom")
    assert response.status_code == 422, response.text
    assert "not a DICOM file: expected a 128-byte preamble" in response.json()["detail"]
    assert seconds < 2 and cpu < 1, (seconds, cpu)
    assert api.leftovers() == []


def test_a_huge_file_meta_is_refused_before_it_is_read(api: LiveApi) -> None:
    head = bytes(128) + b"DICM" + struct.pack("<HH", 2, 0) + b"UL" + struct.pack("<HI", 4, 2**31)
    response = post(api, head + bytes(1024), "application/dicom")
    assert response.status_code == 422
    assert f"declares {2**31} bytes" in response.json()["detail"]


def raw_request(api: LiveApi, content_type: str, length: int) -> socket.socket:
    """A connection that has sent an upload's headers and no body."""
    connection = socket.create_connection(("127.0.0.1", api.port), timeout=10)
    connection.sendall(
        (
            f"POST /v1/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {API_KEY}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()
    )
    return connection


def answer(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_content_type_and_declared_size_are_judged_before_the_body(api: LiveApi) -> None:
    for content_type, length, status in [
        ("text/csv", 1000, b"415"),
        ("application/zip", 65 * MIB, b"413"),
    ]:
        start = time.monotonic()
        with raw_request(api, content_type, length) as connection:
            reply = answer(connection)  # no byte of the body sent: it was never waited for
        assert reply.split(b" ")[1] == status, reply
        assert time.monotonic() - start < IDLE_TIMEOUT_S
    assert api.leftovers() == []


def test_a_stalled_upload_is_dropped_while_another_succeeds(
    api: LiveApi, ct_study: Path, redis_client: redis.Redis
) -> None:
    study = zip_files(sorted(p for p in ct_study.rglob("*") if p.is_file()), ct_study)
    start = time.monotonic()
    with raw_request(api, "application/zip", 10 * MIB) as stalled:
        stalled.sendall(b"PK\x03\x04")  # then nothing
        other = post(api, study, "application/zip")
        assert other.status_code == 202, other.text
        reply = answer(stalled)
    elapsed = time.monotonic() - start
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert b"no byte for 1 s" in reply
    assert IDLE_TIMEOUT_S <= elapsed < IDLE_TIMEOUT_S + 2
    assert api.leftovers() == []


def test_a_trickling_upload_is_dropped_at_the_body_deadline(api: LiveApi) -> None:
    start = time.monotonic()
    with raw_request(api, "application/zip", 10 * MIB) as trickle:
        trickle.settimeout(0.0)
        reply = b""
        while time.monotonic() - start < BODY_TIMEOUT_S + 5 and not reply:
            try:
                trickle.sendall(b"x")  # a byte well within the idle timeout, each time
                reply = trickle.recv(65536)
            except BlockingIOError:
                time.sleep(IDLE_TIMEOUT_S / 4)
            except OSError:
                break
        trickle.settimeout(10)
        reply += answer(trickle)
    elapsed = time.monotonic() - start
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert b"must arrive within 3 s" in reply
    assert BODY_TIMEOUT_S <= elapsed < BODY_TIMEOUT_S + 2
    assert api.leftovers() == []
