"""A canonical anatomical view of a (k, j, i) volume, and in-plane pooling for landmark search.

The anatomy code reasons in one orientation whatever the scanner wrote: canonical axes are
(z, y, x) with slices ordered foot to head (LPS +z), rows anterior to posterior (+y) and
columns right to left (+x). ``AnatomicalFrame.canonical`` returns a view, never a copy, and
``k_of`` maps a canonical slice back to the slice index k of the input volume.

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
from habitus.volume import Geometry

AXIAL_MIN_COSINE = 0.7071  # the slice axis must lie within 45 degrees of head-feet
POOLED_PIXEL_MM = 3.0

T = TypeVar("T", bound=np.generic)


@dataclass(frozen=True)
class AnatomicalFrame:
    n_slices: int
    head_ward: bool  # True when k increases toward the head
    y_axis: int  # input axis (1 or 2) that runs anterior-posterior
    x_axis: int  # input axis (1 or 2) that runs right-left
    flip_y: bool  # reverse the y axis so that rows run anterior to posterior
    flip_x: bool  # reverse the x axis so that columns run right to left
    z_mm: NDArray[np.float64]  # LPS z of each canonical slice, ascending
    pixel_mm: tuple[float, float]  # (y, x) pixel size at full resolution
    pool: tuple[int, int]  # (y, x) pooling factors for the landmark search

    @classmethod
    def from_geometry(
        cls, geometry: Geometry, shape: tuple[int, int, int], pooled_mm: float = POOLED_PIXEL_MM
    ) -> AnatomicalFrame:
        m = geometry.matrix
        if abs(m[2, 0]) < AXIAL_MIN_COSINE:
            raise GeometryRefused(
                "body-composition analytics need axial slices (slice axis within 45 degrees "
                f"of head-feet); found slice direction {tuple(round(float(v), 3) for v in m[:, 0])}"
            )
        x_axis = 2 if abs(m[0, 2]) >= abs(m[0, 1]) else 1
        y_axis = 3 - x_axis
        head_ward = bool(m[2, 0] > 0)
        z = np.array([geometry.z_of_slice(k) for k in range(shape[0])], dtype=np.float64)
        if not head_ward:
            z = z[::-1].copy()
        pixel_mm = (float(geometry.spacing[y_axis]), float(geometry.spacing[x_axis]))
        pool = (max(1, round(pooled_mm / pixel_mm[0])), max(1, round(pooled_mm / pixel_mm[1])))
        return cls(
            n_slices=shape[0],
            head_ward=head_ward,
            y_axis=y_axis,
            x_axis=x_axis,
            flip_y=bool(m[1, y_axis] < 0),
            flip_x=bool(m[0, x_axis] < 0),
            z_mm=z,
            pixel_mm=pixel_mm,
            pool=pool,
        )

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
        view = np.transpose(array, (0, self.y_axis, self.x_axis))
        return view[
            slice(None, None, 1 if self.head_ward else -1),
            slice(None, None, -1 if self.flip_y else 1),
            slice(None, None, -1 if self.flip_x else 1),
        ]

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
