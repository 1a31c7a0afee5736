"""load_ct on the real scans of ../shared/data (TotalSegmentator references are silver)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pydicom
import pytest

from habitus.dicom import SeriesRules, load_ct
from habitus.dicom.nifti import read_nifti_kji
from habitus.errors import GeometryRefused, NoSuitableSeries
from habitus.outputs.report import SeriesInfo
from habitus.volume import Geometry
from tests.dicom.support import assert_geometry_matches_headers, chosen_of, source_of

# TotalSegmentator total_v2 label values used below.
LIVER, T12, T11, SPINAL_CORD, AUTOCHTHON_L, AUTOCHTHON_R = 5, 32, 33, 79, 86, 87


@pytest.fixture(scope="module")
def petct(shared_data: Path):
    return load_ct(shared_data / "ts-petct-dicom" / "series")


def test_petct_volume_has_spacing_from_positions_and_nominal_thickness(petct) -> None:
    volume = petct.volume
    assert volume.shape == (20, 512, 512)
    assert volume.hu.dtype == np.int16
    assert volume.geometry.spacing == pytest.approx((2.0, 0.9765625, 0.9765625))
    assert volume.slice_thickness_mm == pytest.approx(3.0)
    assert chosen_of(petct).slice_thickness_mm == pytest.approx(3.0)
    assert_geometry_matches_headers(volume)
    # Slices ascend towards the head; the first is the most caudal (-804.5 mm).
    assert volume.geometry.z_of_slice(0) == pytest.approx(-804.5)
    assert volume.geometry.z_of_slice(19) == pytest.approx(-766.5)


def test_petct_hu_are_rescaled_from_jpeg2000(shared_data: Path, petct) -> None:
    hu = petct.volume.hu
    assert -1100 <= int(hu.min()) <= -1000  # air outside the body; stored 0 - 1024
    header = source_of(petct).headers[10]
    raw = pydicom.dcmread(shared_data / "ts-petct-dicom" / "series" / _file_of(header))
    expected = raw.pixel_array.astype(np.int32) * float(raw.RescaleSlope) + float(
        raw.RescaleIntercept
    )
    np.testing.assert_array_equal(hu[10], expected)


def _file_of(header: pydicom.Dataset) -> str:
    return f"CT.{header.SOPInstanceUID}"


def test_petct_empty_uids_are_filled_and_warned(petct) -> None:
    source = source_of(petct)
    headers = source.headers
    sop_uids = [h.SOPInstanceUID for h in headers]
    assert all(uid.startswith("1.3.12.2.1107.5.1.4.60064.") for uid in sop_uids)  # from meta
    assert len(set(sop_uids)) == 20
    assert {h.SOPClassUID for h in headers} == {"1.2.840.10008.5.1.4.1.1.2"}
    assert source.series_instance_uid.startswith("2.25.")
    assert source.study_instance_uid.startswith("2.25.")
    assert {h.SeriesInstanceUID for h in headers} == {source.series_instance_uid}
    assert {h.StudyInstanceUID for h in headers} == {source.study_instance_uid}
    assert source.frame_of_reference_uid == headers[0].FrameOfReferenceUID
    text = " ".join(petct.warnings)
    for keyword in ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID"):
        assert keyword in text


def test_petct_derived_uids_are_deterministic(shared_data: Path, petct) -> None:
    again = load_ct(sorted((shared_data / "ts-petct-dicom" / "series").iterdir())[::-1])
    assert source_of(again).series_instance_uid == source_of(petct).series_instance_uid
    assert source_of(again).study_instance_uid == source_of(petct).study_instance_uid
    np.testing.assert_array_equal(again.volume.hu, petct.volume.hu)


def test_petct_verdict_converts_to_report_series_info(petct) -> None:
    info = SeriesInfo(**asdict(petct.chosen))
    assert info.accepted and info.modality == "CT" and info.instances == 20
    assert info.convolution_kernel.startswith("Br38f")
    assert petct.others == []


def _onto_grid(labels: np.ndarray, labels_geometry: Geometry, geometry: Geometry) -> np.ndarray:
    """A label map on an axis-aligned grid that differs from ours only by axis flips."""
    mapping = np.linalg.inv(labels_geometry.affine) @ geometry.affine  # ours -> theirs
    signs = np.diag(mapping[:3, :3])
    np.testing.assert_allclose(mapping[:3, :3], np.diag(signs), atol=1e-4)
    np.testing.assert_allclose(np.abs(signs), 1.0, atol=1e-4)
    flipped = [a for a in range(3) if signs[a] < 0]
    for a in range(3):  # our index 0 is their first or last index along each axis
        expected_offset = labels.shape[a] - 1 if a in flipped else 0
        assert mapping[a, 3] == pytest.approx(expected_offset, abs=1e-3)
    return np.flip(labels, axis=tuple(flipped)) if flipped else labels


def test_petct_reference_lines_up_with_the_volume(shared_data: Path, petct) -> None:
    """Tissues of the TotalSegmentator reference have their expected HU on our grid."""
    labels, labels_geometry, _ = read_nifti_kji(
        shared_data / "ts-petct-dicom" / "reference_total_v2.nii.gz"
    )
    geometry = petct.volume.geometry
    on_our_grid = _onto_grid(labels, labels_geometry, geometry)
    hu = petct.volume.hu
    assert 40 < np.median(hu[on_our_grid == LIVER]) < 160  # contrast-enhanced liver
    assert np.median(hu[np.isin(on_our_grid, (T11, T12))]) > 150
    assert 20 < np.median(hu[np.isin(on_our_grid, (AUTOCHTHON_L, AUTOCHTHON_R))]) < 90
    assert -10 < np.median(hu[on_our_grid == SPINAL_CORD]) < 80
    # The liver lies on the patient's right of the body's centre: -x in LPS.
    liver_centre = geometry.affine @ [*np.argwhere(on_our_grid == LIVER).mean(axis=0), 1.0]
    body_centre = geometry.affine @ [*np.argwhere(hu > -300).mean(axis=0), 1.0]
    assert liver_centre[0] < body_centre[0] - 30


def test_dcmqi_three_slices_are_too_few_by_default(shared_data: Path) -> None:
    with pytest.raises(NoSuitableSeries) as refused:
        load_ct(shared_data / "dcmqi-ct-3slice" / "ct")
    assert "3 slice(s), fewer than the minimum of 16" in str(refused.value)


def test_dcmqi_three_slices_accepted_when_rules_allow(shared_data: Path) -> None:
    loaded = load_ct(shared_data / "dcmqi-ct-3slice" / "ct", SeriesRules(min_slices=3))
    volume = loaded.volume
    assert volume.shape == (3, 512, 512)
    assert volume.geometry.spacing[0] == pytest.approx(1.0, abs=1e-4)
    assert volume.slice_thickness_mm == pytest.approx(1.25)
    assert_geometry_matches_headers(volume)
    assert chosen_of(loaded).convolution_kernel == "STANDARD"
    assert "soft-tissue" in " ".join(chosen_of(loaded).reasons)


def test_dcmqi_folder_with_seg_lists_the_seg_as_refused(shared_data: Path) -> None:
    loaded = load_ct(shared_data / "dcmqi-ct-3slice", SeriesRules(min_slices=3))
    (seg,) = loaded.others
    assert seg.modality == "SEG" and not seg.accepted
    assert seg.reasons == ["modality SEG, expected CT"]
    assert any("liver_spine_seg.nrrd" in w for w in loaded.warnings)  # skipped, not DICOM


def test_kits_duplicate_positions_refused_by_default(shared_data: Path) -> None:
    with pytest.raises(NoSuitableSeries) as refused:
        load_ct(shared_data / "kits-dupe-positions" / "dupe-positions.zip")
    message = str(refused.value)
    assert "duplicate slice positions" in message
    assert "CT26.dcm" in message and "CT28.dcm" in message and "z=-90.00 mm" in message


def test_kits_duplicate_positions_refused_as_geometry_when_count_allowed(
    shared_data: Path,
) -> None:
    with pytest.raises(GeometryRefused) as refused:
        load_ct(
            shared_data / "kits-dupe-positions" / "dupe-positions.zip", SeriesRules(min_slices=3)
        )
    message = str(refused.value)
    assert "duplicate slice positions: 2 slices share 1 position(s)" in message
    assert "missing slices" in message


def test_upper_abdomen_nifti(shared_data: Path) -> None:
    loaded = load_ct(shared_data / "ts-upper-abdomen" / "ct.nii.gz")
    volume = loaded.volume
    assert loaded.format == "nifti" and loaded.chosen is None and volume.source is None
    assert volume.shape == (30, 101, 122)  # nibabel (122, 101, 30) transposed
    assert volume.geometry.spacing == pytest.approx((3.0, 3.0, 3.0))
    # RAS diag(3, 3, 3): i runs to the patient's right (-x in LPS), j anterior (-y), k up.
    np.testing.assert_allclose(volume.geometry.matrix, [[0, 0, -1], [0, -1, 0], [1, 0, 0]])
    assert volume.hu.dtype == np.int16
    assert -1100 <= int(volume.hu.min()) < -900 and int(volume.hu.max()) > 500
    labels, _, _ = read_nifti_kji(shared_data / "ts-upper-abdomen" / "reference_total_v2.nii.gz")
    assert labels.shape == volume.shape
    assert 30 < np.median(volume.hu[labels == LIVER]) < 90  # non-contrast liver
