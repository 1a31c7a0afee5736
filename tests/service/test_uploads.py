"""Unpacking uploads: zip, multipart form, STOW-RS, and every refusal with its status."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from service.uploads import UploadLimits, UploadRefused, _UploadFolder, unpack_upload
from tests.service.support import write_ct_series

LIMITS = UploadLimits(max_unpacked_bytes=50_000_000, max_files=100, max_zip_ratio=200)


@pytest.fixture(scope="module")
def dicom_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_ct_series(tmp_path_factory.mktemp("series"), slices=3, size=16)


def write_body(tmp_path: Path, data: bytes) -> Path:
    body = tmp_path / "body"
    body.write_bytes(data)
    return body


def make_zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def multipart(parts: list[tuple[dict[str, str], bytes]], boundary: str = "b0undary") -> bytes:
    chunks = []
    for headers, data in parts:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        chunks.append(f"--{boundary}\r\n{head}\r\n".encode() + data + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


def test_zip_keeps_dicom_and_reports_the_rest(tmp_path: Path, dicom_files: list[Path]) -> None:
    entries = {f"study/{p.name}": p.read_bytes() for p in dicom_files}
    entries["study/readme.txt"] = b"not an image"
    entries["__MACOSX/._x"] = b"junk"
    body = write_body(tmp_path, make_zip(entries))
    result = unpack_upload(body, "application/zip", tmp_path / "out", LIMITS)
    assert len(result.files) == len(dicom_files)
    assert all(p.parent == tmp_path / "out" for p in result.files)
    assert any(r.startswith("study/readme.txt: not a DICOM file") for r in result.ignored)


@pytest.mark.parametrize("name", ["../escape.dcm", "/etc/cron.d/x", "a/../../b.dcm", "C:\\x.dcm"])
def test_zip_entries_escaping_their_folder_are_refused(tmp_path: Path, name: str) -> None:
    body = write_body(tmp_path, make_zip({name: b"x"}))
    with pytest.raises(UploadRefused, match="points outside") as refused:
        unpack_upload(body, "application/zip", tmp_path / "out", LIMITS)
    assert refused.value.status == 400
    assert not (tmp_path / "escape.dcm").exists()


def test_zip_symbolic_links_are_refused(tmp_path: Path) -> None:
    body = write_body(tmp_path, make_zip({"a.dcm": b"x"}, symlink="link.dcm"))
    with pytest.raises(UploadRefused, match="symbolic link"):
        unpack_upload(body, "application/zip", tmp_path / "out", LIMITS)


def test_zip_unpacking_past_the_limit_is_refused(tmp_path: Path) -> None:
    body = write_body(tmp_path, make_zip({"big.dcm": bytes(200_000)}))
    small = UploadLimits(max_unpacked_bytes=100_000, max_files=10, max_zip_ratio=200)
    with pytest.raises(UploadRefused, match="at most 100000 bytes") as refused:
        unpack_upload(body, "application/zip", tmp_path / "out", small)
    assert refused.value.status == 413


def test_too_many_files_are_refused(tmp_path: Path, dicom_files: list[Path]) -> None:
    body = write_body(tmp_path, make_zip({p.name: p.read_bytes() for p in dicom_files}))
    with pytest.raises(UploadRefused, match="at most 2 files"):
        unpack_upload(body, "application/zip", tmp_path / "out", UploadLimits(10**9, 2, 200))


def test_a_corrupt_zip_is_refused(tmp_path: Path) -> None:
    body = write_body(tmp_path, b"PK\x03\x04 truncated")
    with pytest.raises(UploadRefused, match="not one"):
        unpack_upload(body, "application/zip", tmp_path / "out", LIMITS)


def test_uploads_without_dicom_are_refused_with_what_was_found(tmp_path: Path) -> None:
    body = write_body(tmp_path, make_zip({"notes.txt": b"hello"}))
    with pytest.raises(UploadRefused, match="found none .*notes.txt") as refused:
        unpack_upload(body, "application/zip", tmp_path / "out", LIMITS)
    assert refused.value.status == 422


def test_empty_body_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UploadRefused, match="empty"):
        unpack_upload(write_body(tmp_path, b""), "application/zip", tmp_path / "out", LIMITS)


def test_unknown_media_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UploadRefused, match="got text/plain") as refused:
        unpack_upload(write_body(tmp_path, b"x"), "text/plain", tmp_path / "out", LIMITS)
    assert refused.value.status == 415


def test_multipart_form_with_files_and_a_zip(tmp_path: Path, dicom_files: list[Path]) -> None:
    parts = [
        (
            {
                "Content-Disposition": f'form-data; name="files"; filename="{p.name}"',
                "Content-Type": "application/octet-stream",
            },
            p.read_bytes(),
        )
        for p in dicom_files[:2]
    ]
    parts.append(
        (
            {
                "Content-Disposition": 'form-data; name="files"; filename="rest.zip"',
                "Content-Type": "application/zip",
            },
            make_zip({dicom_files[2].name: dicom_files[2].read_bytes()}),
        )
    )
    parts.append(({"Content-Disposition": 'form-data; name="comment"'}, b"a form field"))
    body = write_body(tmp_path, multipart(parts))
    result = unpack_upload(body, "multipart/form-data; boundary=b0undary", tmp_path / "out", LIMITS)
    assert len(result.files) == 3
    assert len(list((tmp_path / "out").iterdir())) == 3  # the form field left nothing behind


def test_stow_rs_multipart_related(tmp_path: Path, dicom_files: list[Path]) -> None:
    parts = [({"Content-Type": "application/dicom"}, p.read_bytes()) for p in dicom_files]
    parts.append(({"Content-Type": "application/dicom+json"}, b"{}"))
    body = write_body(tmp_path, multipart(parts))
    content_type = 'multipart/related; type="application/dicom"; boundary=b0undary'
    result = unpack_upload(body, content_type, tmp_path / "out", LIMITS)
    assert len(result.files) == len(dicom_files)
    assert any("application/dicom+json" in reason for reason in result.ignored)


def test_stow_rs_of_another_type_is_refused(tmp_path: Path) -> None:
    body = write_body(tmp_path, multipart([({"Content-Type": "application/dicom+xml"}, b"x")]))
    content_type = 'multipart/related; type="application/dicom+xml"; boundary=b0undary'
    with pytest.raises(UploadRefused, match="type=") as refused:
        unpack_upload(body, content_type, tmp_path / "out", LIMITS)
    assert refused.value.status == 415


def test_multipart_without_boundary_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UploadRefused, match="boundary"):
        unpack_upload(write_body(tmp_path, b"x"), "multipart/form-data", tmp_path / "o", LIMITS)


def test_a_zip_declaring_too_many_entries_is_refused_before_its_directory_is_read(
    tmp_path: Path,
) -> None:
    body = write_body(tmp_path, make_zip({f"{i}.dcm": b"" for i in range(5)}))
    with pytest.raises(UploadRefused, match="at most 4 files; this archive declares 5") as refused:
        unpack_upload(body, "application/zip", tmp_path / "out", UploadLimits(10**9, 4, 200))
    assert refused.value.status == 413


def test_a_zip_with_an_oversized_directory_is_refused(tmp_path: Path) -> None:
    body = write_body(tmp_path, make_zip({"x" * 2000 + ".dcm": b""}))  # 2 kB of name
    with pytest.raises(UploadRefused, match="central directory may be at most 512 bytes"):
        unpack_upload(body, "application/zip", tmp_path / "out", UploadLimits(10**9, 1, 200))


def test_a_zip_64_archive_is_counted_from_its_zip64_end_record(tmp_path: Path) -> None:
    body = write_body(tmp_path, make_zip({f"{i}": b"" for i in range(70_000)}))
    with pytest.raises(UploadRefused, match="this archive declares 70000 entries"):
        unpack_upload(body, "application/zip", tmp_path / "out", UploadLimits(10**9, 100, 200))


def test_an_entry_giving_more_than_its_declared_size_is_cut(tmp_path: Path) -> None:
    spool = _UploadFolder(tmp_path / "out", LIMITS)
    with pytest.raises(UploadRefused, match="more than the 1000 bytes its directory") as refused:
        spool.copy_stream(io.BytesIO(bytes(2 * 1024 * 1024)), "a.dcm", declared=1000)
    assert refused.value.status == 422
    assert (tmp_path / "out" / "000001.dcm").stat().st_size == 0  # nothing past the cap


def test_dicom_is_recognised_by_preamble_and_file_meta(
    tmp_path: Path, dicom_files: list[Path]
) -> None:
    bare = dicom_files[0].read_bytes()[132:]  # no preamble: a bare stream is not accepted
    cases = {
        "bare.dcm": bare,
        "no-group-length.dcm": bytes(128) + b"DICM" + bare[12:],
        "good.dcm": dicom_files[0].read_bytes(),
    }
    body = write_body(tmp_path, make_zip(cases))
    result = unpack_upload(body, "application/zip", tmp_path / "out", LIMITS)
    assert len(result.files) == 1
    [meta] = result.meta.values()
    assert meta.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    reasons = "\n".join(result.ignored)
    assert "bare.dcm: not a DICOM file: expected a 128-byte preamble" in reasons
    assert "no-group-length.dcm: not a readable DICOM file" in reasons
