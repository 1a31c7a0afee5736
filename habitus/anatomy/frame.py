"""The canonical anatomical view of an axial (k, j, i) volume, and in-plane pooling for
landmark search.

The anatomy code reasons in the canonical view of ``habitus.segment.orientation`` whatever the
scanner wrote: (z, y, x) with slices ordered foot to head (LPS +z), rows anterior to posterior
(+y) and columns right to left (+x). It needs axial slices, so that a canonical slice is an
input slice: ``AnatomicalFrame.canonical`` returns a view, never a copy, and ``k_of`` maps a
canonical slice back to the slice index k of the input volume.

Landmarks are searched on masks pooled in-plane to about 3 mm pixels: craniocaudal precision
comes from the slice interval, which pooling leaves untouched, and a 512 x 512 slice becomes
about 170 x 170.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from habitus.errors import GeometryRefused
from habitus.segment.orientation import CanonicalFrame
from habitus.volume import Geometry

AXIAL_MIN_COSINE = 0.7071  # the slice axis must lie within 45 degrees of head-feet
POOLED_PIXEL_MM = 3.0

T = TypeVar("T", bound=np.generic)


@dataclass(frozen=True)
class AnatomicalFrame:
    axes: CanonicalFrame  # (k, j, i) -> (z, y, x); k always feeds z
    n_slices: int
    z_mm: NDArray[np.float64]  # LPS z of each canonical slice, ascending
    pixel_mm: tuple[float, float]  # (y, x) pixel size at full resolution
    pool: tuple[int, int]  # (y, x) pooling factors for the landmark search

    @classmethod
    def from_geometry(
        cls, geometry: Geometry, shape: tuple[int, int, int], pooled_mm: float = POOLED_PIXEL_MM
    ) -> AnatomicalFrame:
        m = geometry.matrix
        axes = CanonicalFrame.of(geometry) if abs(m[2, 0]) >= AXIAL_MIN_COSINE else None
        if axes is None or axes.source_axes[0] != 0:
            raise GeometryRefused(
                "body-composition analytics need axial slices (slice axis within 45 degrees "
                f"of head-feet); found slice direction {tuple(round(float(v), 3) for v in m[:, 0])}"
            )
        z = np.array([geometry.z_of_slice(k) for k in range(shape[0])], dtype=np.float64)
        if axes.flipped[0]:
            z = z[::-1].copy()
        pixel_mm = (axes.spacing[1], axes.spacing[2])
        pool = (max(1, round(pooled_mm / pixel_mm[0])), max(1, round(pooled_mm / pixel_mm[1])))
        return cls(axes=axes, n_slices=shape[0], z_mm=z, pixel_mm=pixel_mm, pool=pool)

    @property
    def head_ward(self) -> bool:
        """Whether k increases toward the head."""
        return not self.axes.flipped[0]

    @property
    def pooled_mm(self) -> tuple[float, float]:
        """(y, x) pixel size of the pooled masks, mm."""
        return (self.pixel_mm[0] * self.pool[0], self.pixel_mm[1] * self.pool[1])

    @property
    def slice_interval_mm(self) -> float:
        if self.n_slices < 2:
            return 0.0
        return float(np.median(np.diff(self.z_mm)))

    def canonical(self, array: NDArray[T]) -> NDArray[T]:
        """A (z, y, x) view of a (k, j, i) array of this frame's shape."""
        return self.axes.to_canonical(array)

    def k_of(self, c: int) -> int:
        """Input slice index k of canonical slice c."""
        return c if self.head_ward else self.n_slices - 1 - c

    def k_of_position(self, c: float) -> float:
        """Input slice position of a fractional canonical position (a midpoint)."""
        return c if self.head_ward else self.n_slices - 1 - c

    def z_at(self, c: float) -> float:
        """LPS z at a (possibly fractional) canonical slice position, mm."""
        return float(np.interp(c, np.arange(self.n_slices), self.z_mm))

    def pooled(self, mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """In-plane "any" pooling of a canonical (z, y, x) mask: a pooled pixel is set when
        any pixel of its block is, so thin structures (ribs, skin) survive."""
        py, px = self.pool
        if py == 1 and px == 1:
            return np.ascontiguousarray(mask, dtype=bool)
        nz, ny, nx = mask.shape
        pad_y, pad_x = (-ny) % py, (-nx) % px
        padded = np.pad(mask, ((0, 0), (0, pad_y), (0, pad_x)))
        blocks = padded.reshape(nz, (ny + pad_y) // py, py, (nx + pad_x) // px, px)
        return np.asarray(blocks.any(axis=(2, 4)))

    def pooled_mean(self, array: NDArray[np.generic]) -> NDArray[np.float32]:
        """In-plane mean pooling of a canonical (z, y, x) array (CT numbers): a pooled pixel
        holds the mean of its block, as a thicker voxel would (partial volume)."""
        py, px = self.pool
        values = np.asarray(array, dtype=np.float32)
        if py == 1 and px == 1:
            return values
        nz, ny, nx = values.shape
        pad_y, pad_x = (-ny) % py, (-nx) % px
        padded = np.pad(values, ((0, 0), (0, pad_y), (0, pad_x)), mode="edge")
        blocks = padded.reshape(nz, (ny + pad_y) // py, py, (nx + pad_x) // px, px)
        return np.asarray(blocks.mean(axis=(2, 4)), dtype=np.float32)

    def unpooled_slice(
        self, pooled: NDArray[np.bool_], full_yx: tuple[int, int]
    ) -> NDArray[np.bool_]:
        """A pooled (y, x) slice mask brought back to full in-plane resolution."""
        py, px = self.pool
        full = np.repeat(np.repeat(pooled, py, axis=0), px, axis=1)
        return full[: full_yx[0], : full_yx[1]]
