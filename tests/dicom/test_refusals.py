"""Series that cannot be analysed are refused with a message that names the problem."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID

from habitus.dicom import SeriesRules, load_ct
from habitus.errors import CorruptFile, GeometryRefused, InputRefused, NoSuitableSeries
from habitus.phantoms.write_dicom import axial_geometry, write_series
from habitus.volume import Geometry
from tests.dicom.support import SHAPE, SPACING, chosen_of, edit, small_series


def test_mixed_orientations_name_the_slices(tmp_path: Path) -> None:
    files, _, _ = small_series(tmp_path)
    angle = math.radians(5)  # still axial, but not the orientation of the others
    rotated = [math.cos(angle), math.sin(angle), 0.0, -math.sin(angle), math.cos(angle), 0.0]
    for path in files[5:7]:
        edit(path, lambda ds: setattr(ds, "ImageOrientationPatient", rotated))
    with pytest.raises(GeometryRefused) as refused:
        load_ct(tmp_path)
    message = str(refused.value)
    assert "mixed orientations within the series: 2 of 20 slices" in message
    assert files[5].name in message and files[6].name in message


def test_non_uniform_spacing_names_the_slices(tmp_path: Path) -> None:
    files, _, _ = small_series(tmp_path)

    def shift_up(ds: Dataset) -> None:
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 1.0]

    for path in files[10:]:
        edit(path, shift_up)
    with pytest.raises(GeometryRefused) as refused:
        load_ct(tmp_path)
    message = str(refused.value)
    assert "non-uniform slice spacing" in message
    assert "3.50 mm between" in message and "2.50 mm" in message
    assert files[9].name in message and files[10].name in message


def test_missing_slice_is_a_gap(tmp_path: Path) -> None:
    files, _, _ = small_series(tmp_path)
    files[7].unlink()
    with pytest.raises(GeometryRefused) as refused:
        load_ct(tmp_path)
    message = str(refused.value)
    assert "missing slices" in message and "about 1 slice(s) missing" in message
    assert files[6].name in message and files[8].name in message


def test_unreadable_file_in_place_of_a_slice_is_named_as_likely_gap(tmp_path: Path) -> None:
    files, _, _ = small_series(tmp_path)
    files[7].write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 64)
    with pytest.raises(GeometryRefused) as refused:
        load_ct(tmp_path)
    message = str(refused.value)
    assert "missing slices" in message
    assert "may be the missing slices" in message and files[7].name in message


def test_duplicate_positions_are_refused(tmp_path: Path) -> None:
    files, _, _ = small_series(tmp_path)

    def new_instance(ds: Dataset) -> None:
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3.4.5.6.7")

    edit(files[4], new_instance, tmp_path / "copy_of_slice_5.dcm")
    with pytest.raises(GeometryRefused) as refused:
        load_ct(tmp_path)
    message = str(refused.value)
    assert "duplicate slice positions: 2 slices share 1 position(s)" in message
    assert files[4].name in message and "copy_of_slice_5.dcm" in message


def test_same_instance_twice_is_read_once(tmp_path: Path) -> None:
    files, hu, _ = small_series(tmp_path / "series")
    shutil.copy(files[3], tmp_path / "again.dcm")
    loaded = load_ct(tmp_path)
    np.testing.assert_array_equal(loaded.volume.hu, hu)
    assert any("repeated" in w and "again.dcm" in w for w in loaded.warnings)


def _tilted_geometry(degrees: float) -> Geometry:
    """Image planes tilted about x while the table moves straight along z."""
    t = math.radians(degrees)
    nk, nj, ni = SHAPE
    dz, dy, dx = SPACING
    # Slices advance along +z, but each image's columns run along (0, cos t, -sin t).
    col = (0.0, math.cos(t), -math.sin(t))
    normal = (0.0, math.sin(t), math.cos(t))
    step = dz * math.cos(t)  # Geometry needs the interval along the normal
    return Geometry(
        spacing=(step, dy, dx),
        origin=(-(ni - 1) / 2 * dx, -(nj - 1) / 2 * dy, -400.0),
        direction=((normal[0], col[0], 1.0), (normal[1], col[1], 0.0), (normal[2], col[2], 0.0)),
    )


def test_gantry_tilt_is_refused_not_resampled(tmp_path: Path) -> None:
    files, _, geometry = small_series(tmp_path, geometry=_tilted_geometry(5.0))
    normal = geometry.matrix[:, 0]

    def straight_along_z(ds: Dataset) -> None:
        # Move each slice back onto the z axis, as a tilted scan's positions are.
        position = np.asarray([float(v) for v in ds.ImagePositionPatient])
        k = int(ds.InstanceNumber) - 1
        along = k * geometry.spacing[0]
        straight = position - along * normal + np.array([0.0, 0.0, along / normal[2]])
        ds.ImagePositionPatient = [f"{v:.4f}" for v in straight]
        ds.GantryDetectorTilt = 5

    for path in files:
        edit(path, straight_along_z)
    with pytest.raises(GeometryRefused) as refused:
        load_ct(tmp_path)
    message = str(refused.value)
    assert "gantry tilt" in message and "5.0 degrees" in message
    assert "GantryDetectorTilt 5 degrees" in message and "not resampled" in message


def test_oblique_planes_stacked_along_their_normal_are_accepted(tmp_path: Path) -> None:
    small_series(tmp_path, geometry=_tilted_geometry(3.0))  # no sideways drift: no tilt
    loaded = load_ct(tmp_path)
    assert loaded.volume.shape == SHAPE


def test_inconsistent_rows_and_columns(tmp_path: Path) -> None:
    files, _, geometry = small_series(tmp_path / "series")
    files[10].unlink()
    small_shape = (1, 32, 32)
    position = geometry.slice_position(10)
    odd_geometry = Geometry(spacing=SPACING, origin=tuple(position), direction=geometry.direction)
    (odd,) = write_series(
        tmp_path / "odd",
        np.zeros(small_shape, dtype=np.int16),
        odd_geometry,
        study_uid="1.2.826.0.1.3680043.10.1234.1",
        series_uid=_series_uid(files[0]),
    )
    edit(odd, lambda ds: setattr(ds, "SOPInstanceUID", "1.2.3.99"))
    with pytest.raises(GeometryRefused) as refused:
        load_ct(tmp_path)
    message = str(refused.value)
    assert "inconsistent image size" in message
    assert "40x40 in 19" in message and "32x32 in 1" in message and odd.name in message


def _series_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


def test_too_few_slices(tmp_path: Path) -> None:
    small_series(tmp_path, shape=(10, 40, 40))
    with pytest.raises(NoSuitableSeries) as refused:
        load_ct(tmp_path)
    assert "10 slice(s), fewer than the minimum of 16" in str(refused.value)
    assert load_ct(tmp_path, SeriesRules(min_slices=10)).volume.shape == (10, 40, 40)


def test_non_ct_modality(tmp_path: Path) -> None:
    files, _, _ = small_series(tmp_path)
    for path in files:
        edit(path, lambda ds: setattr(ds, "Modality", "MR"))
    with pytest.raises(NoSuitableSeries) as refused:
        load_ct(tmp_path)
    message = str(refused.value)
    assert "modality MR, expected CT" in message and "20 instances" in message


def test_too_thick_slices(tmp_path: Path) -> None:
    small_series(tmp_path, slice_thickness=6.0)
    with pytest.raises(NoSuitableSeries) as refused:
        load_ct(tmp_path)
    assert "slice thickness 6 mm exceeds the maximum of 5 mm" in str(refused.value)


def test_slices_too_far_apart(tmp_path: Path) -> None:
    small_series(tmp_path, spacing=(7.5, 8.0, 8.0), slice_thickness=5.0)
    with pytest.raises(NoSuitableSeries) as refused:
        load_ct(tmp_path)
    assert "slice interval 7.50 mm exceeds the maximum of 5 mm" in str(refused.value)


def test_truncated_pixel_data_names_the_file(tmp_path: Path) -> None:
    files, _, _ = small_series(tmp_path)
    data = files[12].read_bytes()
    files[12].write_bytes(data[: len(data) - 1000])
    with pytest.raises(CorruptFile) as refused:
        load_ct(tmp_path)
    message = str(refused.value)
    assert files[12].name in message and "cannot decode the pixel data" in message
    assert "Explicit VR Little Endian" in message


def test_corrupt_file_outside_the_chosen_series_is_only_a_warning(tmp_path: Path) -> None:
    _, hu, _ = small_series(tmp_path / "series")
    (tmp_path / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    loaded = load_ct(tmp_path)
    np.testing.assert_array_equal(loaded.volume.hu, hu)
    (warning,) = [w for w in loaded.warnings if "could not be read" in w]
    assert "broken.dcm" in warning


def test_nothing_but_junk(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("not an image")
    with pytest.raises(InputRefused) as refused:
        load_ct(tmp_path)
    assert "found none" in str(refused.value) and "README.txt" in str(refused.value)


def test_only_corrupt_dicom(tmp_path: Path) -> None:
    (tmp_path / "a.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 10)
    with pytest.raises(CorruptFile) as refused:
        load_ct(tmp_path)
    assert "a.dcm" in str(refused.value)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputRefused) as refused:
        load_ct(tmp_path / "nowhere")
    assert "input not found" in str(refused.value)


def test_geometry_problem_of_preferred_series_falls_back_with_warning(tmp_path: Path) -> None:
    files, _, _ = small_series(tmp_path / "thin", series_number=2, series_description="thin")
    files[5].unlink()
    thick_shape = (16, 40, 40)
    thick_spacing = (3.0, 8.0, 8.0)
    small_series(
        tmp_path / "thick",
        shape=thick_shape,
        spacing=thick_spacing,
        geometry=axial_geometry(thick_shape, thick_spacing),
        series_number=3,
        series_description="thick",
    )
    loaded = load_ct(tmp_path)
    assert chosen_of(loaded).description == "thick"
    (thin,) = loaded.others
    assert not thin.accepted and "missing slices" in " ".join(thin.reasons)
    assert any("would have been preferred" in w and "'thin'" in w for w in loaded.warnings)
