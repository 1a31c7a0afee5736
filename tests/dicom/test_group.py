"""Grouping without trusting the datasets' UIDs; filled UIDs land in the returned headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from habitus.dicom import load_ct
from habitus.dicom.group import group_series
from habitus.dicom.read import scan_headers
from habitus.dicom.sources import collect_sources
from tests.dicom.support import chosen_of, edit, small_series, source_of


def _blank_uids(ds: Dataset) -> None:
    ds.StudyInstanceUID = ""
    ds.SeriesInstanceUID = ""
    ds.SOPInstanceUID = ""
    ds.SOPClassUID = ""


def test_missing_uids_are_filled_from_meta_and_derived(tmp_path: Path) -> None:
    files, hu, _ = small_series(tmp_path)
    original = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    for path in files:
        edit(path, _blank_uids)
    loaded = load_ct(tmp_path)
    np.testing.assert_array_equal(loaded.volume.hu, hu)
    headers = source_of(loaded).headers
    assert [h.SOPInstanceUID for h in headers] == [o.SOPInstanceUID for o in original]
    assert {h.SOPClassUID for h in headers} == {original[0].SOPClassUID}
    series_uid = source_of(loaded).series_instance_uid
    assert series_uid.startswith("2.25.") and series_uid != original[0].SeriesInstanceUID
    assert {h.SeriesInstanceUID for h in headers} == {series_uid}
    assert chosen_of(loaded).series_instance_uid == series_uid
    assert {h.StudyInstanceUID for h in headers} == {source_of(loaded).study_instance_uid}
    warnings = " ".join(loaded.warnings)
    assert "SOPInstanceUID was empty in 20 dataset(s); taken from MediaStorageSOPInstanceUID" in (
        warnings
    )
    assert "StudyInstanceUID is missing in 20 dataset(s)" in warnings
    assert "SeriesInstanceUID is missing in 20 dataset(s)" in warnings


def test_series_without_uids_are_told_apart_by_what_they_share(tmp_path: Path) -> None:
    soft, soft_hu, _ = small_series(
        tmp_path / "a", series_number=2, series_description="soft", kernel="B30f"
    )
    sharp, _, _ = small_series(
        tmp_path / "b", series_number=3, series_description="sharp", kernel="B70f", seed=1
    )
    for path in soft + sharp:
        edit(path, _blank_uids)
    grouping = group_series(scan_headers(collect_sources(tmp_path)).instances)
    assert [len(g.instances) for g in grouping.series] == [20, 20]
    assert len({g.series_instance_uid for g in grouping.series}) == 2
    assert len({g.study_instance_uid for g in grouping.series}) == 1  # one study
    loaded = load_ct(tmp_path)
    assert chosen_of(loaded).description == "soft"
    np.testing.assert_array_equal(loaded.volume.hu, soft_hu)


def test_uids_missing_everywhere_are_derived_per_instance(tmp_path: Path) -> None:
    files, _, _ = small_series(tmp_path)

    def no_uid_at_all(ds: Dataset) -> None:
        _blank_uids(ds)
        ds.file_meta.MediaStorageSOPInstanceUID = UID("")

    for path in files:
        edit(path, no_uid_at_all, valid_meta=False)
    loaded = load_ct(tmp_path)
    uids = [h.SOPInstanceUID for h in source_of(loaded).headers]
    assert len(set(uids)) == 20 and all(u.startswith("2.25.") for u in uids)
    assert any("SOPInstanceUID is missing in 20 dataset(s)" in w for w in loaded.warnings)


def test_present_uids_are_kept_and_not_warned(tmp_path: Path) -> None:
    files, _, _ = small_series(tmp_path)
    original = pydicom.dcmread(files[0], stop_before_pixels=True)
    loaded = load_ct(tmp_path)
    assert source_of(loaded).series_instance_uid == original.SeriesInstanceUID
    assert source_of(loaded).study_instance_uid == original.StudyInstanceUID
    assert loaded.warnings == []
