"""Per-slice voxel counts and HU sums of every class inside the trunk.

One pass over the slices the metrics need; waist, torso and L3 figures are then sums over
slice ranges of this table. Counts are taken at full resolution, inside the trunk mask of
the anatomy (arms and legs removed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from habitus.anatomy import Anatomy
from habitus.labels import NUM_LABELS, Tissue
from habitus.volume import CTVolume

FAT = (Tissue.AVF, Tissue.SF)


@dataclass(frozen=True)
class SliceStats:
    counts: NDArray[np.int64]  # (canonical slices, labels): voxels inside the trunk
    hu_sums: NDArray[np.float64]  # (canonical slices, labels)
    measured: NDArray[np.bool_]  # slices whose counts were taken
    pixel_area_mm2: float
    slice_interval_mm: float  # the volume's k spacing: voxel volume = pixel area x this

    def voxels(self, lo: int, hi: int, tissues: Iterable[Tissue]) -> int:
        """Voxels of the given classes in canonical slices lo..hi (inclusive)."""
        self._check(lo, hi)
        return int(self.counts[lo : hi + 1, [int(t) for t in tissues]].sum())

    def volume_cm3(self, lo: int, hi: int, tissues: Iterable[Tissue]) -> float:
        voxel_mm3 = self.pixel_area_mm2 * self.slice_interval_mm
        return self.voxels(lo, hi, tissues) * voxel_mm3 / 1000.0

    def area_cm2(self, c: int, tissues: Iterable[Tissue]) -> float:
        return self.voxels(c, c, tissues) * self.pixel_area_mm2 / 100.0

    def mean_hu(self, lo: int, hi: int, tissue: Tissue) -> float | None:
        n = self.voxels(lo, hi, (tissue,))
        if n == 0:
            return None
        return float(self.hu_sums[lo : hi + 1, int(tissue)].sum() / n)

    def _check(self, lo: int, hi: int) -> None:
        if not self.measured[lo : hi + 1].all():
            raise ValueError(f"slices {lo}..{hi} were not all measured")


def trunk_slice_stats(
    labels: NDArray[np.uint8], volume: CTVolume, anatomy: Anatomy, slices: Iterable[int]
) -> SliceStats:
    """Counts and HU sums per class inside the trunk, for the given canonical slices."""
    frame = anatomy.frame
    canonical_labels = frame.canonical(labels)
    canonical_hu = frame.canonical(volume.hu)
    n = canonical_labels.shape[0]
    counts = np.zeros((n, NUM_LABELS), dtype=np.int64)
    hu_sums = np.zeros((n, NUM_LABELS), dtype=np.float64)
    measured = np.zeros(n, dtype=bool)
    full_yx = (canonical_labels.shape[1], canonical_labels.shape[2])
    for c in sorted(set(slices)):
        lab = canonical_labels[c]
        inside = anatomy.trunk_slice(c, full_yx) & (lab > 0)
        values = lab[inside]
        counts[c] = np.bincount(values, minlength=NUM_LABELS)[:NUM_LABELS]
        hu_sums[c] = np.bincount(
            values, weights=canonical_hu[c][inside].astype(np.float64), minlength=NUM_LABELS
        )[:NUM_LABELS]
        measured[c] = True
    spacing = volume.geometry.spacing
    return SliceStats(
        counts=counts,
        hu_sums=hu_sums,
        measured=measured,
        pixel_area_mm2=float(spacing[1] * spacing[2]),
        slice_interval_mm=float(spacing[0]),
    )
