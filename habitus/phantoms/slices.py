"""Axial slices painted in millimetres: the body wall, spine and shapes the torso and the
trunk share, their attenuation and their noise.

Each slice is a :class:`SliceCanvas` (HU and labels over x to the patient's left, y to the
back); a :class:`Layout` gives the body's semi-axes, layers and vertebral body at one height,
shrunk to fit small grids. Labels follow :class:`habitus.labels.Tissue`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from habitus.labels import Tissue

# Mean HU of each structure; noise is added on top.
HU_AIR = -1000
HU_FAT = -100
HU_MUSCLE = 50
HU_SKIN = 30
HU_LIVER = 58
HU_KIDNEY = 45
HU_BOWEL = 38
HU_AORTA = 48
HU_LUNG = -850
HU_CANCELLOUS = 400
HU_CORTICAL = 1000
HU_RIB = 700
HU_CSF = 10
HU_CORD = 35
HU_TABLE = 150
NOISE_HU = 8.0


def with_noise(hu: NDArray[np.float32], seed: int) -> NDArray[np.int16]:
    """``hu`` with Gaussian noise of ``NOISE_HU``, rounded to the stored CT range."""
    rng = np.random.default_rng(seed)
    noisy = hu + rng.normal(0.0, NOISE_HU, size=hu.shape).astype(np.float32)
    return np.clip(np.rint(noisy), -1024, 3071).astype(np.int16)


def axis_mm(n: int, spacing: float) -> NDArray[np.float64]:
    """Pixel centres in mm along one in-plane axis, centred on the table's axis."""
    return np.asarray((np.arange(n) - (n - 1) / 2.0) * spacing, dtype=np.float64)


def fit_scale(fov_x: float, fov_y: float) -> float:
    """How much the body shrinks to fit a field of view smaller than an adult."""
    return min(1.0, 0.9 * fov_x / 340.0, 0.8 * fov_y / 250.0)


@dataclass
class SliceCanvas:
    """One slice being painted; shapes are drawn only inside their bounding box."""

    hu: NDArray[np.float32]
    labels: NDArray[np.uint8]
    x: NDArray[np.float64]
    y: NDArray[np.float64]

    def ellipse(
        self, cx: float, cy: float, ax: float, ay: float, value: float, tissue: Tissue
    ) -> None:
        if ax <= 0 or ay <= 0:
            return
        cols = np.flatnonzero(np.abs(self.x - cx) <= ax)
        rows = np.flatnonzero(np.abs(self.y - cy) <= ay)
        if not cols.size or not rows.size:
            return
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        u = ((self.x[box[1]] - cx) / ax) ** 2
        v = ((self.y[box[0]] - cy) / ay) ** 2
        mask = v[:, np.newaxis] + u[np.newaxis, :] <= 1.0
        self.hu[box][mask] = value
        self.labels[box][mask] = int(tissue)

    def table(self, top: float, half_width: float) -> None:
        """A cradle-shaped plate behind the patient, 6 mm thick; background, not patient."""
        depth = self.y[:, np.newaxis] - (top - 0.0008 * self.x[np.newaxis, :] ** 2)
        mask = (depth >= 0) & (depth <= 6.0) & (np.abs(self.x)[np.newaxis, :] < half_width)
        self.hu[mask] = HU_TABLE
        self.labels[mask] = int(Tissue.BACKGROUND)


@dataclass(frozen=True)
class Layout:
    """The in-plane layout of the body at one height, in mm (+x left, +y back)."""

    ax: float  # body semi-axes and centre
    ay: float
    cy: float
    skin: float
    fat: float
    wall: float
    body_r: float  # vertebral body radius
    scale: float

    @property
    def inner_x(self) -> float:
        return self.ax - self.skin - self.fat

    @property
    def inner_y(self) -> float:
        return self.ay - self.skin - self.fat

    @property
    def cav_x(self) -> float:
        return self.inner_x - self.wall

    @property
    def cav_y(self) -> float:
        return self.inner_y - self.wall

    @property
    def vy(self) -> float:  # vertebral body centre
        return self.cy + self.cav_y - 1.6 * self.body_r

    @property
    def canal_y(self) -> float:
        return self.vy + self.body_r + 9.0 * self.scale


def body_layout(bulge: float, fov_x: float, fov_y: float, fat: float, wall: float) -> Layout:
    """An adult's trunk (semi-axes 165-175 by 115-120 mm as ``bulge`` goes from 0 to 1) with
    ``fat`` mm of subcutaneous fat and a ``wall`` mm muscle wall, shrunk to the field of view."""
    scale = fit_scale(fov_x, fov_y)
    return Layout(
        ax=(165.0 + 10.0 * bulge) * scale,
        ay=(115.0 + 5.0 * bulge) * scale,
        cy=-0.04 * fov_y,
        skin=2.5 * scale,
        fat=fat * scale,
        wall=wall * scale,
        body_r=17.0 * scale,
        scale=scale,
    )


def paint_wall(canvas: SliceCanvas, body: Layout, fov_x: float, cavity_fat: Tissue) -> None:
    """The table, then skin, subcutaneous fat, the muscle wall and the cavity's fat."""
    paint = canvas.ellipse
    cy = body.cy
    canvas.table(cy + body.ay + 8.0 * body.scale, 0.45 * fov_x)
    paint(0, cy, body.ax, body.ay, HU_SKIN, Tissue.SKIN)
    paint(0, cy, body.ax - body.skin, body.ay - body.skin, HU_FAT, Tissue.SF)
    paint(0, cy, body.inner_x, body.inner_y, HU_MUSCLE, Tissue.MUSCLE)
    paint(0, cy, body.cav_x, body.cav_y, HU_FAT, cavity_fat)


def paint_liver(canvas: SliceCanvas, body: Layout, size: float = 1.0) -> None:
    """The liver on the patient's right (-x), ``size`` times its full section."""
    cav_x, cav_y = body.cav_x, body.cav_y
    canvas.ellipse(
        -0.45 * cav_x,
        body.cy - 0.1 * cav_y,
        0.5 * size * cav_x,
        0.6 * size * cav_y,
        HU_LIVER,
        Tissue.IO,
    )


def paint_kidneys(canvas: SliceCanvas, body: Layout) -> None:
    """Both kidneys, beside the vertebral body."""
    cav_x, cav_y = body.cav_x, body.cav_y
    for side in (-1.0, 1.0):
        canvas.ellipse(
            side * 0.38 * cav_x,
            body.vy - 0.05 * cav_y,
            0.13 * cav_x,
            0.2 * cav_y,
            HU_KIDNEY,
            Tissue.IO,
        )


def paint_aorta(canvas: SliceCanvas, body: Layout) -> None:
    """The aorta, left-anterior of the spine."""
    r = body.body_r
    canvas.ellipse(1.3 * r, body.vy - 1.3 * r, 0.55 * r, 0.55 * r, HU_AORTA, Tissue.IO)


def paint_paraspinal(canvas: SliceCanvas, body: Layout) -> None:
    """The paraspinal muscles behind the transverse processes."""
    r = body.body_r
    for side in (-1.0, 1.0):
        canvas.ellipse(side * 1.7 * r, body.canal_y + 0.6 * r, 1.2 * r, r, HU_MUSCLE, Tissue.MUSCLE)


def paint_vertebral_body(canvas: SliceCanvas, body: Layout) -> None:
    """Cortex round cancellous bone."""
    r, marrow_r = body.body_r, body.body_r - 2.0 * body.scale
    canvas.ellipse(0, body.vy, r, r, HU_CORTICAL, Tissue.BONE)
    canvas.ellipse(0, body.vy, marrow_r, marrow_r, HU_CANCELLOUS, Tissue.BONE)


def paint_arch(canvas: SliceCanvas, body: Layout, canal: bool = True) -> None:
    """The posterior arch round the canal, and the canal with its cord (below the cord's end,
    ``canal=False``, the arch is solid)."""
    arch_r, canal_r = 11.0 * body.scale, 7.0 * body.scale
    canvas.ellipse(0, body.canal_y, arch_r, arch_r, HU_CORTICAL, Tissue.BONE)
    if canal:
        canvas.ellipse(0, body.canal_y, canal_r, canal_r, HU_CSF, Tissue.CNS)
        canvas.ellipse(0, body.canal_y, 0.55 * canal_r, 0.55 * canal_r, HU_CORD, Tissue.CNS)
