"""NIfTI input: RAS (i, j, k) files become LPS (k, j, i) volumes at the same patient positions."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from habitus.dicom import load_ct
from habitus.errors import CorruptFile, InputRefused

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def _assert_same_positions(data: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Every sampled voxel of the file has the same value at the same patient position."""
    volume = load_ct(path).volume
    rng = np.random.default_rng(0)
    to_ours = np.linalg.inv(volume.geometry.affine)
    for i, j, k in rng.integers(0, data.shape, size=(50, 3)):
        lps = RAS_TO_LPS @ affine @ [i, j, k, 1.0]
        ours = np.rint(to_ours @ lps).astype(int)[:3]
        assert volume.hu[tuple(ours)] == data[i, j, k]


def _ramp(shape: tuple[int, int, int]) -> np.ndarray:
    return (np.arange(np.prod(shape)).reshape(shape) % 3000 - 1000).astype(np.int16)


def test_axial_ras_file(tmp_path: Path) -> None:
    data = _ramp((12, 10, 8))
    affine = np.array([[-0.8, 0, 0, 100.0], [0, -0.7, 0, 50.0], [0, 0, 2.5, -300.0], [0, 0, 0, 1]])
    path = _save(tmp_path / "ct.nii.gz", data, affine)
    loaded = load_ct(path)
    volume = loaded.volume
    assert loaded.format == "nifti" and volume.source is None and volume.slice_thickness_mm is None
    assert volume.shape == (8, 10, 12)
    assert volume.geometry.spacing == pytest.approx((2.5, 0.7, 0.8))
    # RAS -0.8 along i is +0.8 along LPS x: i runs to the patient's left.
    np.testing.assert_allclose(volume.geometry.matrix, [[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    assert volume.geometry.origin == pytest.approx((-100.0, -50.0, -300.0))
    np.testing.assert_array_equal(volume.hu, data.transpose(2, 1, 0))
    assert volume.notes == ()
    _assert_same_positions(data, affine, path)


def test_sagittal_file_is_permuted_so_slices_are_craniocaudal(tmp_path: Path) -> None:
    data = _ramp((6, 9, 7))
    # i runs along z (superior), j along y (anterior), k along x (right to left reversed).
    affine = np.array([[0, 0, -1.5, 40.0], [0, 1.0, 0, -20.0], [2.0, 0, 0, -100.0], [0, 0, 0, 1]])
    path = _save(tmp_path / "sagittal.nii", data, affine)
    volume = load_ct(path).volume
    assert abs(volume.geometry.matrix[2, 0]) == pytest.approx(1.0)  # k is craniocaudal
    assert volume.shape == (6, 9, 7)
    assert any("permuted" in note for note in volume.notes)
    _assert_same_positions(data, affine, path)


def test_scaled_float_data_is_rounded_to_int16(tmp_path: Path) -> None:
    data = np.array([[[-1000.4, 20.6], [40.5, 1.2]]], dtype=np.float32)
    path = _save(tmp_path / "f.nii.gz", data, np.eye(4))
    hu = load_ct(path).volume.hu
    assert hu.dtype == np.int16
    np.testing.assert_array_equal(hu.transpose(2, 1, 0), np.rint(data))


def test_data_without_negative_values_is_warned(tmp_path: Path) -> None:
    path = _save(tmp_path / "u.nii.gz", np.full((4, 4, 4), 1000, dtype=np.int16), np.eye(4))
    assert any("Hounsfield" in w for w in load_ct(path).warnings)


def test_four_dimensional_file_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "t.nii.gz", np.zeros((4, 4, 4, 2), dtype=np.int16), np.eye(4))
    with pytest.raises(InputRefused) as refused:
        load_ct(path)
    assert "expected a 3D NIfTI volume" in str(refused.value) and "(4, 4, 4, 2)" in str(
        refused.value
    )


def test_damaged_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "bad.nii.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(CorruptFile) as refused:
        load_ct(path)
    assert "expected a readable NIfTI file" in str(refused.value)
