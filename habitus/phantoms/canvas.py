"""A label and material canvas over a (u, y, x) grid, with shape primitives to paint on it.

Internally rows run head to foot: ``u`` is the depth below the vertex in mm (patient z = -u),
``y`` points posterior and ``x`` to the patient's left (LPS). A smooth random displacement
warps the in-plane coordinates so that no two phantoms share exact shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.phantoms.materials import Material

F32 = NDArray[np.float32]
Mask = NDArray[np.bool_]
Param = NDArray[np.float64] | float


def _interpolation_matrix(n_fine: int, n_coarse: int) -> F32:
    """Linear interpolation from ``n_coarse`` knots spread over ``n_fine`` samples."""
    pos = np.linspace(0.0, n_coarse - 1.0, n_fine)
    lo = np.minimum(np.floor(pos).astype(int), n_coarse - 2)
    w = (pos - lo).astype(np.float32)
    m = np.zeros((n_fine, n_coarse), dtype=np.float32)
    m[np.arange(n_fine), lo] = 1.0 - w
    m[np.arange(n_fine), lo + 1] = w
    return m


def smooth_noise(
    shape: tuple[int, int, int], cell: Sequence[float], rng: np.random.Generator
) -> F32:
    """Zero-mean random field of unit-ish amplitude varying over about ``cell`` voxels per axis.

    Coarse fields are Gaussian knots interpolated separably (three small matrix products);
    fine ones are smoothed white noise. Both are much faster than ``ndimage.zoom``.
    """
    if min(cell) < 4.0:
        white = rng.standard_normal(shape, dtype=np.float32)
        sigma = [max(c / 2.0, 0.5) for c in cell]
        out = ndimage.gaussian_filter(white, sigma=sigma, mode="wrap", truncate=2.5)
        return np.asarray(out / max(float(out.std()), 1e-6), dtype=np.float32)
    knots = [max(2, int(np.ceil(n / max(c, 1.0))) + 1) for n, c in zip(shape, cell, strict=True)]
    field = rng.standard_normal(knots).astype(np.float32)
    mz, my, mx = (_interpolation_matrix(n, k) for n, k in zip(shape, knots, strict=True))
    out = (mz @ field.reshape(knots[0], -1)).reshape(shape[0], knots[1], knots[2])
    out = np.matmul(my[None], out) @ mx.T
    return np.ascontiguousarray(out, dtype=np.float32)


class Profile:
    """A piecewise-linear function of the fraction of height below the vertex."""

    def __init__(self, fractions: Sequence[float], values: Sequence[float]) -> None:
        self.fractions = np.asarray(fractions, dtype=np.float64)
        self.values = np.asarray(values, dtype=np.float64)

    def __call__(self, u_frac: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.interp(u_frac, self.fractions, self.values)


class Canvas:
    def __init__(
        self,
        u_mm: NDArray[np.float64],
        y_mm: NDArray[np.float64],
        x_mm: NDArray[np.float64],
        height_mm: float,
        rng: np.random.Generator,
        warp_mm: float,
        spacing_mm: tuple[float, float, float],
    ) -> None:
        self.height = height_mm
        self.u = u_mm
        self.spacing = spacing_mm
        self.y_mm = y_mm
        self.x_mm = x_mm
        self.margin = 3.0 * warp_mm + 2.0  # how far the warp can move a point
        self.shape = (len(u_mm), len(y_mm), len(x_mm))
        self.rng = rng
        Y = np.broadcast_to(y_mm.astype(np.float32)[None, :, None], self.shape)
        X = np.broadcast_to(x_mm.astype(np.float32)[None, None, :], self.shape)
        cell = (90.0 / spacing_mm[0], 90.0 / spacing_mm[1], 90.0 / spacing_mm[2])
        self.Y = (Y + warp_mm * np.clip(smooth_noise(self.shape, cell, rng), -3, 3)).astype(
            np.float32
        )
        self.X = (X + warp_mm * np.clip(smooth_noise(self.shape, cell, rng), -3, 3)).astype(
            np.float32
        )
        self.labels = np.zeros(self.shape, dtype=np.uint8)
        self.material = np.zeros(self.shape, dtype=np.uint8)
        # Named parts (the psoas, the kidneys, ...): every voxel painted for each, and the
        # label and materials it was painted with; regions without a label (a cavity) are
        # only marked.
        self.parts: dict[str, Mask] = {}
        self.part_labels: dict[str, int] = {}
        self.part_materials: dict[str, set[int]] = {}

    # --- rows ---------------------------------------------------------------------------------
    def rows(self, f0: float, f1: float) -> slice:
        """Rows whose depth lies in [f0, f1) of the height (u increases with the row index)."""
        lo = int(np.searchsorted(self.u, f0 * self.height, side="left"))
        hi = int(np.searchsorted(self.u, f1 * self.height, side="left"))
        return slice(lo, hi)

    def frac(self, ks: slice) -> NDArray[np.float64]:
        """Fraction of height of the rows ``ks``, shaped to broadcast over a slice block."""
        return (self.u[ks] / self.height)[:, None, None]

    def xy(self, ks: slice) -> tuple[F32, F32]:
        return self.X[ks], self.Y[ks]

    # --- primitives ---------------------------------------------------------------------------
    def window(self, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
        """Row and column ranges that may hold points with x in [x0, x1], y in [y0, y1]."""
        m = self.margin
        j0 = int(np.searchsorted(self.y_mm, y0 - m))
        j1 = int(np.searchsorted(self.y_mm, y1 + m))
        i0 = int(np.searchsorted(self.x_mm, x0 - m))
        i1 = int(np.searchsorted(self.x_mm, x1 + m))
        return slice(j0, j1), slice(i0, i1)

    def ellipse(
        self,
        ks: slice,
        cx: Param,
        cy: Param,
        a: Param,
        b: Param,
        power: float = 2.0,
    ) -> Mask:
        """Inside the (super)ellipse of centre (cx, cy) and semi-axes (a, b), slice by slice.

        Parameters are scalars or per-row arrays shaped (rows, 1, 1); a row whose semi-axis is
        under half a millimetre draws nothing. Only the bounding box is evaluated.
        """
        n = len(range(*ks.indices(self.shape[0])))
        out = np.zeros((n, self.shape[1], self.shape[2]), dtype=bool)
        a_ = np.broadcast_to(np.asarray(a, dtype=np.float32), (n, 1, 1))
        b_ = np.broadcast_to(np.asarray(b, dtype=np.float32), (n, 1, 1))
        cx_ = np.broadcast_to(np.asarray(cx, dtype=np.float32), (n, 1, 1))
        cy_ = np.broadcast_to(np.asarray(cy, dtype=np.float32), (n, 1, 1))
        if n == 0 or float(a_.max()) <= 0.5 or float(b_.max()) <= 0.5:
            return out
        js, is_ = self.window(
            float((cx_ - a_).min()),
            float((cx_ + a_).max()),
            float((cy_ - b_).min()),
            float((cy_ + b_).max()),
        )
        X = self.X[ks, js, is_]
        Y = self.Y[ks, js, is_]
        dx = (X - cx_) / np.maximum(a_, np.float32(1e-3))
        dy = (Y - cy_) / np.maximum(b_, np.float32(1e-3))
        r = dx * dx + dy * dy if power == 2.0 else np.abs(dx) ** power + np.abs(dy) ** power
        out[:, js, is_] = (r <= 1.0) & (a_ > 0.5) & (b_ > 0.5)
        return out

    def ellipsoid(
        self, center: tuple[float, float, float], radii: tuple[float, float, float]
    ) -> tuple[slice, Mask]:
        """Rows and mask of an ellipsoid; center and radii as (u, y, x) in mm."""
        cu, cy, cx = center
        ru, ry, rx = radii
        ks = self.rows((cu - ru) / self.height, (cu + ru) / self.height)
        dz = (self.u[ks][:, None, None] - cu) / max(ru, 1e-3)
        scale = np.sqrt(np.clip(1.0 - dz * dz, 0.0, 1.0))
        return ks, self.ellipse(ks, cx, cy, rx * scale, ry * scale)

    def angle(self, ks: slice, cx: Param, cy: Param) -> F32:
        """In-plane angle around (cx, cy): 0 anterior, +pi/2 patient left, +-pi posterior."""
        X, Y = self.xy(ks)
        dx = X - np.asarray(cx, dtype=np.float32)
        dy = Y - np.asarray(cy, dtype=np.float32)
        return np.arctan2(dx, -dy).astype(np.float32)

    # --- painting -----------------------------------------------------------------------------
    def paint(
        self, ks: slice, mask: Mask, label: int, material: Material, part: str | None = None
    ) -> None:
        """Paint ``mask`` over rows ``ks``; with ``part``, also record it as that named part."""
        self.labels[ks][mask] = label
        self.material[ks][mask] = material
        if part is not None:
            self.mark(part, ks, mask)
            self.part_labels[part] = int(label)
            self.part_materials.setdefault(part, set()).add(int(material))

    def paint_where(
        self,
        ks: slice,
        mask: Mask,
        label: int,
        material: Material,
        only_labels: Sequence[int],
        part: str | None = None,
    ) -> None:
        """Paint only over voxels that currently carry one of ``only_labels``."""
        block = self.labels[ks]
        m = mask & np.isin(block, np.asarray(only_labels, dtype=np.uint8))
        self.paint(ks, m, label, material, part)

    def mark(self, name: str, ks: slice, mask: Mask) -> None:
        """Add ``mask`` over rows ``ks`` to the named part or region ``name``."""
        if name not in self.parts:
            self.parts[name] = np.zeros(self.shape, dtype=bool)
        self.parts[name][ks] |= mask

    def named_parts(self) -> dict[str, Mask]:
        """Each named part where it still carries the label and a material it was painted
        with (later structures, fat, bone or a joint capsule may have taken some of it
        back); regions as marked."""
        out = {}
        for name, mask in self.parts.items():
            label = self.part_labels.get(name)
            if label is None:
                out[name] = mask
                continue
            materials = np.asarray(sorted(self.part_materials[name]), dtype=np.uint8)
            out[name] = mask & (self.labels == label) & np.isin(self.material, materials)
        return out
