"""The real scans of ../shared/data as CT volumes, with their reference masks on the same grid.

Every reference is TotalSegmentator output (a silver standard). Masks come back in the
volume's (k, j, i) array order. The DICOM series is read with pydicom directly so that these
checks depend on nothing but the segmenter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import nibabel as nib
import numpy as np
import pydicom
from numpy.typing import NDArray

from habitus.metrics.contrast import ContrastPhase
from habitus.volume import CTVolume, Geometry
from model_export.painted_contrast import enhanced_volume, structure_masks

Mask = NDArray[np.bool_]

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class RealCase:
    """A real scan, its TotalSegmentator labels and, where present, its tissue-type masks."""

    name: str
    volume: CTVolume
    structures: NDArray[np.uint8]  # TotalSegmentator "total" labels, (k, j, i)
    names: dict[int, str]  # label value -> structure name
    tissue_types: dict[str, Mask]  # skeletal_muscle, subcutaneous_fat, torso_fat when present

    def mask(self, *structure_names: str) -> Mask:
        """Union of the named structures (exact names or a trailing '*' for a prefix)."""
        values = [
            value
            for value, name in self.names.items()
            if any(
                name == wanted or (wanted.endswith("*") and name.startswith(wanted[:-1]))
                for wanted in structure_names
            )
        ]
        return np.isin(self.structures, values)


def _label_names(shared_data: Path) -> dict[int, str]:
    raw = json.loads((shared_data / "totalsegmentator_total_v2_labels.json").read_text())
    return {int(k): str(v) for k, v in raw.items()}


def _nifti(path: Path) -> nib.Nifti1Image:
    return cast(nib.Nifti1Image, nib.load(path))


def _nifti_kji(path: Path) -> NDArray[Any]:
    """A NIfTI image's data in (k, j, i) order, as stored on disk (no reorientation)."""
    data = np.asarray(_nifti(path).dataobj)
    return np.ascontiguousarray(np.transpose(data, (2, 1, 0)))


def _geometry_of_nifti(path: Path) -> Geometry:
    affine = _nifti(path).affine
    lps = _RAS_TO_LPS @ affine[:3, :3]  # columns: the i, j, k axes in LPS, scaled
    columns = [lps[:, 2], lps[:, 1], lps[:, 0]]  # k, j, i
    spacing = tuple(float(np.linalg.norm(c)) for c in columns)
    unit = np.stack([c / s for c, s in zip(columns, spacing, strict=True)], axis=1)
    origin = _RAS_TO_LPS @ affine[:3, 3]
    return Geometry(
        spacing=(spacing[0], spacing[1], spacing[2]),
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=_rows(unit),
    )


def _rows(matrix: NDArray[np.float64]) -> tuple[tuple[float, float, float], ...]:
    return tuple((float(r[0]), float(r[1]), float(r[2])) for r in matrix)


def upper_abdomen(shared_data: Path) -> RealCase:
    """The non-contrast T11-L2 scan (3 mm isotropic NIfTI) with its tissue-type masks."""
    folder = shared_data / "ts-upper-abdomen"
    hu = _nifti_kji(folder / "ct.nii.gz").astype(np.int16)
    volume = CTVolume(hu=hu, geometry=_geometry_of_nifti(folder / "ct.nii.gz"))
    tissue_types = {
        name: _nifti_kji(folder / "tissue_types" / f"{name}.nii.gz") > 0
        for name in ("skeletal_muscle", "subcutaneous_fat", "torso_fat")
    }
    structures = _nifti_kji(folder / "reference_total_v2.nii.gz").astype(np.uint8)
    return RealCase("ts-upper-abdomen", volume, structures, _label_names(shared_data), tissue_types)


def read_dicom_volume(folder: Path) -> CTVolume:
    """An axial CT series as a volume, slices sorted along their normal (UIDs may be empty)."""
    datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir()) if p.is_file()]
    row_dir = np.asarray(datasets[0].ImageOrientationPatient[:3], dtype=float)
    col_dir = np.asarray(datasets[0].ImageOrientationPatient[3:], dtype=float)
    normal = np.cross(row_dir, col_dir)
    datasets.sort(key=lambda ds: float(np.dot(normal, np.asarray(ds.ImagePositionPatient))))
    positions = np.asarray([ds.ImagePositionPatient for ds in datasets], dtype=float)
    steps = np.diff(positions @ normal)
    hu = np.stack(
        [
            ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            for ds in datasets
        ]
    )
    row_spacing, column_spacing = (float(v) for v in datasets[0].PixelSpacing)
    direction = np.stack([normal, col_dir, row_dir], axis=1)
    geometry = Geometry(
        spacing=(float(np.median(steps)), row_spacing, column_spacing),
        origin=(float(positions[0, 0]), float(positions[0, 1]), float(positions[0, 2])),
        direction=_rows(direction),
    )
    return CTVolume(
        hu=np.round(hu).astype(np.int16),
        geometry=geometry,
        slice_thickness_mm=float(datasets[0].SliceThickness),
    )


def petct(shared_data: Path) -> RealCase:
    """The contrast PET-CT series (20 JPEG 2000 slices) with its reference resampled to it.

    The reference NIfTI is on the same grid but stored LAS with slices from the feet up: its
    j axis runs against the DICOM rows, which a body-mask check in the tests confirms.
    """
    folder = shared_data / "ts-petct-dicom"
    volume = read_dicom_volume(folder / "series")
    structures = _nifti_kji(folder / "reference_total_v2.nii.gz")[:, ::-1, :]
    if volume.geometry.matrix[2, 0] < 0:  # slices sorted head first: the NIfTI runs feet first
        structures = structures[::-1]
    return RealCase(
        "ts-petct-dicom",
        volume,
        np.ascontiguousarray(structures).astype(np.uint8),
        _label_names(shared_data),
        {},
    )


def with_contrast(case: RealCase, phase: ContrastPhase, seed: int | None = None) -> RealCase:
    """The case with ``phase``'s contrast painted into its reference vessels and organs."""
    structures = structure_masks(case.structures, case.names)
    volume = enhanced_volume(case.volume, structures, phase, seed)
    return replace(case, name=f"{case.name} ({phase.value})", volume=volume)
