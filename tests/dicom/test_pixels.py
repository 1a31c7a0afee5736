"""Pixel data: every supported transfer syntax gives the same HU; rescale and slice order."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from habitus.dicom import load_ct
from habitus.dicom.pixels import Rescale, to_hu
from habitus.errors import InputRefused
from habitus.phantoms.torso import synthetic_torso
from habitus.phantoms.write_dicom import write_series
from habitus.volume import Geometry
from tests.dicom.support import SHAPE, SPACING, assert_geometry_matches_headers, edit, small_series


@pytest.mark.parametrize(
    "syntax", [ImplicitVRLittleEndian, JPEG2000Lossless, RLELossless, JPEGLSLossless]
)
def test_compressed_copy_gives_the_same_hu(tmp_path: Path, syntax: str) -> None:
    files, hu, _ = small_series(tmp_path, transfer_syntax=syntax)
    assert pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID == syntax
    loaded = load_ct(tmp_path)
    np.testing.assert_array_equal(loaded.volume.hu, hu)


DCMCJPEG = Path("/usr/bin/dcmcjpeg")


@pytest.mark.skipif(not DCMCJPEG.exists(), reason="dcmtk's dcmcjpeg is not installed")
def test_jpeg_lossless_from_dcmtk_gives_the_same_hu(tmp_path: Path) -> None:
    files, hu, _ = small_series(tmp_path / "plain")
    (tmp_path / "jpeg").mkdir()
    for path in files:  # dcmcjpeg's default is lossless process 14, selection value 1
        subprocess.run([str(DCMCJPEG), str(path), str(tmp_path / "jpeg" / path.name)], check=True)
    first = pydicom.dcmread(tmp_path / "jpeg" / files[0].name)
    assert first.file_meta.TransferSyntaxUID == JPEGLosslessSV1
    np.testing.assert_array_equal(load_ct(tmp_path / "jpeg").volume.hu, hu)


def test_signed_storage_gives_the_same_hu(tmp_path: Path) -> None:
    files, hu, _ = small_series(tmp_path, rescale_intercept=0)
    assert pydicom.dcmread(files[0]).PixelRepresentation == 1
    np.testing.assert_array_equal(load_ct(tmp_path).volume.hu, hu)


def test_rescale_slope_and_intercept_per_slice(tmp_path: Path) -> None:
    files, hu, _ = small_series(tmp_path)
    stored = hu.astype(np.int32) + 1024

    def slope_two(ds: pydicom.Dataset) -> None:
        ds.RescaleSlope, ds.RescaleIntercept = 2, -1000

    edit(files[3], slope_two)
    volume = load_ct(tmp_path).volume
    np.testing.assert_array_equal(volume.hu[3], stored[3] * 2 - 1000)
    np.testing.assert_array_equal(volume.hu[4], hu[4])


def test_to_hu_rounds_fractional_rescale_and_clips_to_int16() -> None:
    stored = np.array([[0, 1, 2, 40000]], dtype=np.uint16)
    hu = to_hu(stored, Rescale(slope=0.5, intercept=-1024.25))
    np.testing.assert_array_equal(hu, [[-1024, -1024, -1023, 18976]])
    clipped = to_hu(np.array([[65535]], dtype=np.uint16), Rescale(slope=1.0, intercept=0.0))
    assert clipped.dtype == np.int16 and int(clipped[0, 0]) == 32767


@pytest.mark.parametrize("thickness", [1.0, 2.5, 5.0])
def test_slice_thicknesses(tmp_path: Path, thickness: float) -> None:
    shape = (20, 32, 32)
    spacing = (thickness, 10.0, 10.0)
    files, hu, geometry = small_series(tmp_path, shape=shape, spacing=spacing)
    volume = load_ct(tmp_path).volume
    np.testing.assert_array_equal(volume.hu, hu)
    assert volume.geometry.spacing[0] == pytest.approx(thickness)
    assert volume.slice_thickness_mm == pytest.approx(thickness)
    assert volume.geometry.origin == pytest.approx(geometry.origin)
    assert_geometry_matches_headers(volume)


def test_slices_are_sorted_by_position_not_by_file_name(tmp_path: Path) -> None:
    files, hu, _ = small_series(tmp_path / "written")
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    names = [f"IMG{n:04d}" for n in range(len(files))]
    random.Random(1).shuffle(names)
    for path, name in zip(files, names, strict=True):
        shutil.copy(path, shuffled / name)
    np.testing.assert_array_equal(load_ct(shuffled).volume.hu, hu)


def test_slices_written_head_to_feet_are_stacked_feet_to_head(tmp_path: Path) -> None:
    nk, nj, ni = SHAPE
    downwards = Geometry(
        spacing=SPACING,
        origin=(-(ni - 1) / 2 * SPACING[2], -(nj - 1) / 2 * SPACING[1], -300.0),
        direction=((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0)),
    )
    # direction column 0 is (0, 0, -1): slice k of the written array is k steps lower.
    _, hu, geometry = small_series(tmp_path, geometry=downwards)
    volume = load_ct(tmp_path).volume
    np.testing.assert_array_equal(volume.hu, hu[::-1])
    assert volume.geometry.matrix[:, 0] == pytest.approx([0.0, 0.0, 1.0])
    assert volume.geometry.slice_position(0) == pytest.approx(geometry.slice_position(nk - 1))
    assert_geometry_matches_headers(volume)


def test_feet_first_orientation_keeps_slice_normal_direction(tmp_path: Path) -> None:
    nk, nj, ni = SHAPE
    # Feet first supine: rows run towards the patient's right (-x); normal = row x col = -z.
    feet_first = Geometry(
        spacing=SPACING,
        origin=((ni - 1) / 2 * SPACING[2], -(nj - 1) / 2 * SPACING[1], -300.0),
        direction=((0.0, 0.0, -1.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0)),
    )
    _, hu, _ = small_series(tmp_path, geometry=feet_first)
    volume = load_ct(tmp_path).volume
    assert volume.geometry.matrix[:, 0] == pytest.approx([0.0, 0.0, -1.0])
    np.testing.assert_array_equal(volume.hu, hu)
    assert_geometry_matches_headers(volume)


def test_rgb_pixels_are_refused(tmp_path: Path) -> None:
    files, _, _ = small_series(tmp_path)

    def to_rgb(ds: pydicom.Dataset) -> None:
        frame = ds.pixel_array
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelData = np.repeat((frame // 256).astype(np.uint8)[..., None], 3, axis=2).tobytes()

    edit(files[2], to_rgb)
    with pytest.raises(InputRefused) as refused:
        load_ct(tmp_path)
    assert "SamplesPerPixel 1" in str(refused.value) and files[2].name in str(refused.value)


def test_synthetic_writer_rejects_values_that_do_not_fit(tmp_path: Path) -> None:
    hu, _ = synthetic_torso((2, 8, 8), (1.0, 1.0, 1.0))
    hu[0, 0, 0], hu[0, 0, 1] = 32767, -32768  # a span wider than 16 bits after the intercept
    with pytest.raises(ValueError, match="do not fit 16 bits"):
        write_series(tmp_path, hu, Geometry(spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)))
