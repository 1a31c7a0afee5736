"""Label maps built from the TotalSegmentator references in ../shared/data, for landmark tests.

The references are silver standards: bone is the union of the reference's bones (vertebrae,
ribs, sacrum, hips, femurs, shoulder girdle, sternum; costal cartilages optional) and the
body is the CT above -500 HU (largest component). Everything else in the body is labelled
"internal organs" so that the anatomy code sees only bone and body outline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from habitus.labels import Tissue
from habitus.volume import CTVolume, Geometry

BONE_NAMES_PREFIXES = ("vertebrae_", "rib_", "hip_", "femur_", "humerus_", "scapula_", "clavicula_")
BONE_NAMES = {"sacrum", "sternum", "skull"}
CARTILAGE = "costal_cartilages"


@dataclass(frozen=True)
class RealCase:
    labels: NDArray[np.uint8]  # (k, j, i) Tissue values
    volume: CTVolume
    reference: NDArray[np.uint8]  # (k, j, i) TotalSegmentator labels on the same grid
    names: dict[int, str]

    def values_named(self, predicate: object) -> list[int]:
        assert callable(predicate)
        return [v for v, n in self.names.items() if predicate(n)]

    def slices_with(self, values: list[int]) -> NDArray[np.int64]:
        return np.flatnonzero(np.isin(self.reference, values).any(axis=(1, 2)))


def _names(shared_data: Path) -> dict[int, str]:
    raw = json.loads((shared_data / "totalsegmentator_total_v2_labels.json").read_text())
    return {int(k): v for k, v in raw.items()}


def _is_bone(name: str, cartilage: bool) -> bool:
    return (
        name.startswith(BONE_NAMES_PREFIXES)
        or name in BONE_NAMES
        or (cartilage and name == CARTILAGE)
    )


def _label_map(
    hu: NDArray[np.floating], reference: NDArray[np.uint8], names: dict[int, str], cartilage: bool
) -> NDArray[np.uint8]:
    body = hu > -500
    components, _ = ndi.label(body)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    body = components == int(np.argmax(sizes))
    labels = np.where(body, Tissue.IO, Tissue.BACKGROUND).astype(np.uint8)
    bones = [v for v, n in names.items() if _is_bone(n, cartilage)]
    labels[np.isin(reference, bones)] = Tissue.BONE
    return labels


def _aligned(data: NDArray[np.generic], source: Geometry, target: Geometry) -> NDArray[np.generic]:
    """Flip the axes of ``data`` (on ``source``'s grid) that run opposite to ``target``'s."""
    for axis in range(3):
        if float(np.dot(source.matrix[:, axis], target.matrix[:, axis])) < 0:
            data = np.flip(data, axis)
    return data


def upper_abdomen(shared_data: Path, cartilage: bool = False) -> RealCase:
    """ts-upper-abdomen: non-contrast CT, T11 to L2, 3 mm isotropic, NIfTI."""
    from habitus.dicom.nifti import read_nifti_kji

    folder = shared_data / "ts-upper-abdomen"
    raw_reference, geometry, _ = read_nifti_kji(folder / "reference_total_v2.nii.gz")
    hu, _, _ = read_nifti_kji(folder / "ct.nii.gz")
    reference = raw_reference.astype(np.uint8)
    names = _names(shared_data)
    volume = CTVolume(hu=np.rint(hu).astype(np.int16), geometry=geometry)
    return RealCase(_label_map(hu, reference, names, cartilage), volume, reference, names)


def petct(shared_data: Path, cartilage: bool = False) -> RealCase:
    """ts-petct-dicom: the CT of a PET-CT, lower chest and upper abdomen, JPEG 2000 DICOM."""
    from habitus.dicom import load_ct
    from habitus.dicom.nifti import read_nifti_kji

    folder = shared_data / "ts-petct-dicom"
    volume = load_ct(folder / "series").volume
    raw_reference, ref_geometry, _ = read_nifti_kji(folder / "reference_total_v2.nii.gz")
    reference = np.ascontiguousarray(
        _aligned(raw_reference.astype(np.uint8), ref_geometry, volume.geometry), dtype=np.uint8
    )
    assert reference.shape == volume.hu.shape, (reference.shape, volume.hu.shape)
    names = _names(shared_data)
    labels = _label_map(volume.hu.astype(np.float32), reference, names, cartilage)
    return RealCase(labels, volume, reference, names)


def resampled(
    case: RealCase, spacing: tuple[float, float, float], cartilage: bool = False
) -> RealCase:
    """The case on a grid of about ``spacing`` (k, j, i) mm over the same extent: the CT
    interpolated linearly, the reference by nearest neighbour, the label map rebuilt from the
    two (as a segmentation of the coarser scan would see it)."""
    geometry = case.volume.geometry
    shape = case.reference.shape
    new_shape = tuple(
        max(1, int(round(n * s / t)))
        for n, s, t in zip(shape, geometry.spacing, spacing, strict=True)
    )
    # voxel edges of the two grids meet at both ends of the scan
    axes = [(np.arange(m) + 0.5) * n / m - 0.5 for n, m in zip(shape, new_shape, strict=True)]
    new_spacing = tuple(
        s * n / m for s, n, m in zip(geometry.spacing, shape, new_shape, strict=True)
    )
    first = np.array([a[0] for a in axes])
    origin = np.asarray(geometry.origin) + geometry.matrix @ (np.asarray(geometry.spacing) * first)
    grid = np.meshgrid(*axes, indexing="ij")
    hu = ndi.map_coordinates(case.volume.hu.astype(np.float32), grid, order=1, mode="nearest")
    reference = ndi.map_coordinates(case.reference, grid, order=0, mode="nearest")
    new_geometry = Geometry(
        spacing=(new_spacing[0], new_spacing[1], new_spacing[2]),
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=geometry.direction,
    )
    volume = CTVolume(hu=np.rint(hu).astype(np.int16), geometry=new_geometry)
    labels = _label_map(hu, reference.astype(np.uint8), case.names, cartilage)
    return RealCase(labels, volume, reference.astype(np.uint8), case.names)
