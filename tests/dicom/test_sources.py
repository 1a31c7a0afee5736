"""Inputs: folders, zip archives and lists of files; non-DICOM files are skipped and counted."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from habitus.dicom import load_ct
from habitus.dicom.read import scan_headers
from habitus.dicom.sources import FileSource, collect_sources
from habitus.errors import CorruptFile, InputRefused
from tests.dicom.support import small_series


def _zip(folder: Path, archive: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, f"study/{path.relative_to(folder)}")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return archive


def _dicomdir(path: Path) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.1.3.10")
    ds.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3.4")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.FileSetID = "HABITUS"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_zip_gives_the_same_volume_as_the_folder(tmp_path: Path) -> None:
    _, hu, _ = small_series(tmp_path / "series")
    archive = _zip(tmp_path / "series", tmp_path / "study.zip", {"study/README.txt": b"hello"})
    loaded = load_ct(archive)
    np.testing.assert_array_equal(loaded.volume.hu, hu)
    assert loaded.volume.source is not None
    assert any("README.txt" in w and "not DICOM" in w for w in loaded.warnings)


@pytest.mark.parametrize("entry", ["../evil.dcm", "/etc/evil.dcm", "study/../../evil.dcm"])
def test_zip_entries_escaping_the_folder_refuse_the_archive(tmp_path: Path, entry: str) -> None:
    small_series(tmp_path / "series", shape=(16, 16, 16))
    archive = _zip(tmp_path / "series", tmp_path / "study.zip", {entry: b"x"})
    with pytest.raises(InputRefused) as refused:
        load_ct(archive)
    assert repr(entry) in str(refused.value) and "outside the archive folder" in str(refused.value)


def test_not_a_zip(tmp_path: Path) -> None:
    fake = tmp_path / "study.zip"
    fake.write_bytes(b"this is not a zip archive")
    with pytest.raises(CorruptFile) as refused:
        load_ct(fake)
    assert "expected a readable zip archive" in str(refused.value)


def test_list_of_files(tmp_path: Path) -> None:
    files, hu, _ = small_series(tmp_path)
    loaded = load_ct([str(p) for p in files])
    np.testing.assert_array_equal(loaded.volume.hu, hu)


def test_folder_is_walked_recursively_and_junk_is_counted(tmp_path: Path) -> None:
    _, hu, _ = small_series(tmp_path / "a" / "b" / "series")
    (tmp_path / "notes.txt").write_text("readme")
    (tmp_path / "a" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    _dicomdir(tmp_path / "DICOMDIR")
    loaded = load_ct(tmp_path)
    np.testing.assert_array_equal(loaded.volume.hu, hu)
    (skipped,) = [w for w in loaded.warnings if w.startswith("skipped")]
    assert "skipped 3 file(s)" in skipped
    for name in ("notes.txt", "image.png", "DICOMDIR"):
        assert name in skipped


def test_header_scan_sorts_files_into_buckets(tmp_path: Path) -> None:
    files, _, _ = small_series(tmp_path, shape=(3, 8, 8))
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01" * 100)
    (tmp_path / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 10)
    scan = scan_headers(collect_sources(tmp_path))
    assert sorted(i.source.path for i in scan.instances) == sorted(files)
    assert all("PixelData" not in i.header for i in scan.instances)  # headers only
    assert scan.skipped == [str(tmp_path / "junk.bin")]
    assert [c.name for c in scan.corrupt] == [str(tmp_path / "broken.dcm")]


def test_file_without_preamble_is_read(tmp_path: Path) -> None:
    files, hu, _ = small_series(tmp_path / "series")
    raw = files[0].read_bytes()
    meta_end = 132 + 12 + int.from_bytes(raw[140:144], "little")  # preamble, DICM, group len
    files[0].write_bytes(raw[meta_end:])  # a bare Explicit VR dataset, no preamble or meta
    loaded = load_ct(tmp_path / "series")
    np.testing.assert_array_equal(loaded.volume.hu, hu)


def test_zip_member_names_in_messages(tmp_path: Path) -> None:
    source = FileSource(tmp_path / "a.zip", "study/x.dcm")
    assert source.name == f"{tmp_path / 'a.zip'}!study/x.dcm"
