"""NIfTI input (``.nii``, ``.nii.gz``) for research use.

Orientation handling: nibabel indexes the data (i, j, k) and its affine maps (i, j, k) to RAS
millimetres. Habitus volumes are indexed (k, j, i) with an LPS geometry, so

* the affine is converted to LPS by negating its x and y rows;
* the array is transposed (i, j, k) -> (k, j, i), and the affine's columns follow: our
  direction column 0 is the unit vector of NIfTI axis k, column 1 of j, column 2 of i; the
  spacing is the length of each column and the origin the affine's translation;
* no axis is flipped, so voxel (k, j, i) of the volume is voxel (i, j, k) of the file, and a
  label map on the same grid (a reference segmentation) lines up after the same transpose;
* only when NIfTI axis k is not the one closest to the craniocaudal axis (a sagittal or
  coronal acquisition) are the axes first permuted so that it is, and a note says so.

The result has no DICOM source (``source=None``) and no nominal slice thickness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from habitus.errors import CorruptFile, InputRefused
from habitus.volume import CTVolume, Geometry

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
INT16_MIN, INT16_MAX = np.iinfo(np.int16).min, np.iinfo(np.int16).max


def read_nifti_kji(path: Path) -> tuple[NDArray[np.float64], Geometry, list[str]]:
    """The data of a 3D NIfTI file in (k, j, i) order, its LPS geometry and notes."""
    try:
        image: Any = nib.load(str(path))
        data = np.asanyarray(image.dataobj)  # applies scl_slope / scl_inter
        affine = np.asarray(image.affine, dtype=np.float64)
    except Exception as exc:  # nibabel raises many kinds on a damaged file
        raise CorruptFile(
            f"expected a readable NIfTI file at {path}, found: {type(exc).__name__}: {exc}"
        ) from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputRefused(f"expected a 3D NIfTI volume at {path}, found shape {data.shape}")
    notes: list[str] = []
    permutation = _craniocaudal_last(affine)
    if permutation != (0, 1, 2):
        data = np.transpose(data, permutation)
        affine = affine.copy()
        affine[:3, :3] = affine[:3, list(permutation)]
        notes.append(f"NIfTI axes permuted {permutation} so that the slice axis is craniocaudal")
    lps = RAS_TO_LPS @ affine[:3, :3]
    origin = RAS_TO_LPS @ affine[:3, 3]
    columns = [lps[:, 2], lps[:, 1], lps[:, 0]]  # our k, j, i are NIfTI k, j, i reversed
    spacing = tuple(float(np.linalg.norm(c)) for c in columns)
    if min(spacing) <= 0:
        raise InputRefused(f"NIfTI affine of {path} has a zero-length axis: spacing {spacing}")
    direction = np.column_stack([c / s for c, s in zip(columns, spacing, strict=True)])
    geometry = Geometry(
        spacing=(spacing[0], spacing[1], spacing[2]),
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=tuple((float(r[0]), float(r[1]), float(r[2])) for r in direction),
    )
    return np.transpose(data, (2, 1, 0)), geometry, notes


def load_nifti(path: Path) -> tuple[CTVolume, list[str]]:
    """A CT volume from a NIfTI file holding HU, and warnings about its content."""
    data, geometry, notes = read_nifti_kji(path)
    warnings: list[str] = []
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.isfinite(data)):
        raise InputRefused(f"NIfTI data of {path} holds NaN or infinite values; expected HU")
    hu = np.clip(np.rint(data), INT16_MIN, INT16_MAX).astype(np.int16)
    if hu.size and int(hu.min()) >= 0:
        warnings.append(
            f"no voxel of {path.name} is below 0 HU: the data may be stored values rather "
            "than Hounsfield units (air is about -1000 HU)"
        )
    volume = CTVolume(hu=hu, geometry=geometry, source=None, notes=tuple(notes))
    return volume, warnings


def _craniocaudal_last(affine: NDArray[np.float64]) -> tuple[int, int, int]:
    """Axis order putting the array axis closest to the craniocaudal axis last."""
    columns = affine[:3, :3]
    norms = np.linalg.norm(columns, axis=0)
    z_share = np.abs(columns[2, :]) / np.where(norms > 0, norms, 1.0)
    slice_axis = int(np.argmax(z_share))
    if slice_axis == 2:
        return (0, 1, 2)
    others = [a for a in range(3) if a != slice_axis]
    # Keep the remaining axes in their order, x-most first, so rows and columns stay familiar.
    x_share = np.abs(columns[0, others]) / np.where(norms[others] > 0, norms[others], 1.0)
    first, second = (others[0], others[1]) if x_share[0] >= x_share[1] else (others[1], others[0])
    return (first, second, slice_axis)
