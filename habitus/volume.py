"""The CT volume every stage works on: HU voxels plus their place in patient space.

Array axes are (slice, row, column) = (k, j, i). Patient coordinates are DICOM LPS, in mm.
``direction`` holds, as columns, the LPS unit vectors along the k, j and i axes, so that

    position(k, j, i) = origin + direction @ ((k, j, i) * spacing)

For an axial DICOM series, column 2 is ImageOrientationPatient[0:3] (along a row), column 1
is ImageOrientationPatient[3:6] (down a column) and column 0 the slice normal, pointing the
way the sorted slices advance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Geometry:
    spacing: tuple[float, float, float]  # (k, j, i) in mm: slice interval, row, column spacing
    origin: tuple[float, float, float]  # LPS position of voxel (0, 0, 0), mm
    direction: tuple[tuple[float, float, float], ...] = (
        (0.0, 0.0, 1.0),
        (0.0, 1.0, 0.0),
        (1.0, 0.0, 0.0),
    )  # rows of the 3x3 matrix whose columns are the k, j, i axes in LPS

    @property
    def matrix(self) -> NDArray[np.float64]:
        return np.asarray(self.direction, dtype=np.float64)

    @property
    def affine(self) -> NDArray[np.float64]:
        """4x4 matrix mapping homogeneous (k, j, i, 1) to (x, y, z, 1) in LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.matrix * np.asarray(self.spacing)[np.newaxis, :]
        a[:3, 3] = self.origin
        return a

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def slice_position(self, k: int) -> NDArray[np.float64]:
        """LPS position of the first voxel of slice k (the slice's ImagePositionPatient)."""
        return np.asarray(self.origin) + self.matrix[:, 0] * self.spacing[0] * k

    def z_of_slice(self, k: int) -> float:
        """Craniocaudal (LPS z, head positive) coordinate of slice k, mm."""
        return float(self.slice_position(k)[2])


@dataclass(frozen=True)
class SourceSeries:
    """What the outputs need to know of the DICOM series a volume came from.

    ``headers`` are the source datasets without pixel data, one per slice, in volume order,
    so that SEG frames and SR references point at the right instances.
    """

    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    headers: list[Any] = field(repr=False)  # pydicom Datasets, slice k at index k
    description: str = ""


@dataclass(frozen=True)
class CTVolume:
    hu: NDArray[np.int16]  # (k, j, i) Hounsfield units
    geometry: Geometry
    source: SourceSeries | None = None  # None for NIfTI input
    slice_thickness_mm: float | None = None  # nominal reconstruction thickness, if known
    notes: tuple[str, ...] = ()  # what was done to the data on the way (resampling, ...)

    @property
    def shape(self) -> tuple[int, int, int]:
        k, j, i = self.hu.shape
        return (k, j, i)
