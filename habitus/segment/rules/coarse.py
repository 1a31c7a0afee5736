"""A coarser in-plane grid for the steps that only need the rough shape of the anatomy.

Finding which piece is the table, where an arm touches the trunk or where the body wall runs
does not need sub-millimetre pixels. Those steps work on blocks of about 2 mm and hand back
full-resolution masks, which the attenuation thresholds then refine voxel by voxel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from habitus.segment.rules.morphology import Mask

COARSE_PIXEL_MM = 2.0


@dataclass(frozen=True)
class CoarseGrid:
    """Integer in-plane block size from the full grid to the coarse one (slices are kept)."""

    factor: int
    full_shape: tuple[int, int, int]

    @classmethod
    def for_spacing(
        cls, spacing: tuple[float, float, float], shape: tuple[int, int, int]
    ) -> CoarseGrid:
        finest = min(spacing[1], spacing[2])
        return cls(factor=max(1, int(COARSE_PIXEL_MM / finest)), full_shape=shape)

    def spacing(self, spacing: tuple[float, float, float]) -> tuple[float, float, float]:
        return (spacing[0], spacing[1] * self.factor, spacing[2] * self.factor)

    def _blocks(self, array: NDArray[np.generic]) -> NDArray[np.generic]:
        f = self.factor
        k, h, w = array.shape
        hp, wp = -(-h // f) * f, -(-w // f) * f
        padded = np.pad(array, ((0, 0), (0, hp - h), (0, wp - w)), mode="edge")
        return padded.reshape(k, hp // f, f, wp // f, f)

    def _count(self, mask: Mask) -> NDArray[np.uint16]:
        """How many fine pixels of each coarse pixel are set (strided sums: fast)."""
        f = self.factor
        blocks = self._blocks(mask.view(np.uint8))
        count = np.zeros(blocks.shape[:2] + blocks.shape[3:4], dtype=np.uint16)
        for dy in range(f):
            for dx in range(f):
                count += blocks[:, :, dy, :, dx].astype(np.uint16)
        return count

    def any(self, mask: Mask) -> Mask:
        """A coarse pixel is set when any of its fine pixels is."""
        if self.factor == 1:
            return mask.copy()
        return self._count(mask) > 0

    def majority(self, mask: Mask) -> Mask:
        """A coarse pixel is set when at least half of its fine pixels are."""
        if self.factor == 1:
            return mask.copy()
        return np.asarray(2 * self._count(mask) >= self.factor**2)

    def mean(self, values: NDArray[np.generic]) -> NDArray[np.float32]:
        if self.factor == 1:
            return values.astype(np.float32)
        return np.asarray(self._blocks(values).mean(axis=(2, 4), dtype=np.float32))

    def expand(self, coarse: NDArray[np.generic]) -> NDArray[np.generic]:
        """Back onto the full grid, each coarse pixel covering its block."""
        if self.factor == 1:
            return coarse.copy()
        f = self.factor
        full = np.repeat(np.repeat(coarse, f, axis=1), f, axis=2)
        return full[:, : self.full_shape[1], : self.full_shape[2]]
