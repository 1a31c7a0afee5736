"""Volume and mean attenuation of each class over the whole scan."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from habitus.labels import TISSUE_CLASSES
from habitus.metrics.schema import ClassMeasurement
from habitus.volume import Geometry


def class_measurements(
    labels: NDArray[np.uint8], hu: NDArray[np.integer], geometry: Geometry
) -> list[ClassMeasurement]:
    """Voxel count, volume (cm³) and mean HU of each of the seven classes."""
    counts = np.bincount(labels.ravel(), minlength=len(TISSUE_CLASSES) + 1)
    hu_sums = np.bincount(
        labels.ravel(), weights=hu.ravel().astype(np.float64), minlength=len(TISSUE_CLASSES) + 1
    )
    cm3_per_voxel = geometry.voxel_volume_mm3 / 1000.0
    rows = []
    for tissue in TISSUE_CLASSES:
        n = int(counts[tissue])
        rows.append(
            ClassMeasurement(
                label=int(tissue),
                name=tissue.display_name,
                voxels=n,
                volume_cm3=round(n * cm3_per_voxel, 3),
                mean_hu=round(float(hu_sums[tissue] / n), 1) if n else None,
            )
        )
    return rows
