"""The simple torso: anatomy of ellipses spread over the scan, whatever its length.

Lungs and rings of rib in the upper part, liver, kidneys, bowel and psoas below, a vertebral
column without discs, and a table behind the patient; the tests of reading, choosing and
segmenting a series, and the benchmarks, scan it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from habitus.labels import Tissue
from habitus.phantoms import slices
from habitus.phantoms.slices import (
    HU_AIR,
    HU_AORTA,
    HU_BOWEL,
    HU_LUNG,
    HU_MUSCLE,
    HU_RIB,
    SliceCanvas,
)


def synthetic_torso(
    shape: tuple[int, int, int] = (64, 128, 128),
    spacing: tuple[float, float, float] = (2.5, 3.0, 3.0),
    seed: int = 0,
) -> tuple[NDArray[np.int16], NDArray[np.uint8]]:
    """A torso of ellipses: (HU, labels), both (k, j, i); slice 0 is the caudal end."""
    nk, nj, ni = shape
    _, dy, dx = spacing
    x, y = slices.axis_mm(ni, dx), slices.axis_mm(nj, dy)  # mm, +x: left, +y: back
    hu = np.full(shape, HU_AIR, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    for k in range(nk):
        t = k / max(nk - 1, 1)  # 0 at the caudal end, 1 at the cranial end
        _paint_slice(SliceCanvas(hu[k], labels[k], x, y), t, ni * dx, nj * dy)
    return slices.with_noise(hu, seed), labels


def _paint_slice(canvas: SliceCanvas, t: float, fov_x: float, fov_y: float) -> None:
    thorax = t > 0.7  # lungs and ribs in the upper part; abdomen below
    body = slices.body_layout(math.sin(math.pi * t), fov_x, fov_y, fat=20.0, wall=14.0)
    cy, cav_x, cav_y, vy, body_r = body.cy, body.cav_x, body.cav_y, body.vy, body.body_r
    paint = canvas.ellipse
    slices.paint_wall(canvas, body, fov_x, Tissue.SF if thorax else Tissue.AVF)  # thorax's fat: SF
    if thorax:
        for side in (-1.0, 1.0):
            lung_x = side * 0.5 * cav_x
            paint(lung_x, cy - 0.05 * cav_y, 0.42 * cav_x, 0.8 * cav_y, HU_LUNG, Tissue.BACKGROUND)
        paint(-0.1 * cav_x, cy - 0.35 * cav_y, 0.12 * cav_x, 0.1 * cav_y, HU_AORTA, Tissue.IO)
    else:
        if t > 0.4:
            slices.paint_liver(canvas, body)
        if 0.25 < t < 0.6:
            slices.paint_kidneys(canvas, body)
        for bx, by in ((0.15, -0.45), (0.45, -0.1), (-0.05, -0.15), (0.25, 0.25)):
            if t < 0.5 or bx > 0:  # bowel loops, fewer beside the liver
                paint(bx * cav_x, cy + by * cav_y, 0.14 * cav_x, 0.13 * cav_y, HU_BOWEL, Tissue.IO)
        if t < 0.45:
            for side in (-1.0, 1.0):  # psoas beside the vertebral body
                paint(side * 1.9 * body_r, vy, 0.9 * body_r, 1.1 * body_r, HU_MUSCLE, Tissue.MUSCLE)
    slices.paint_aorta(canvas, body)
    slices.paint_paraspinal(canvas, body)
    slices.paint_vertebral_body(canvas, body)
    slices.paint_arch(canvas, body)
    if t > 0.55:  # ribs in the muscle wall, open at the front
        rib_r = 5.0 * body.scale
        for angle in np.linspace(0.25 * math.pi, 1.75 * math.pi, 10):
            rx = (body.inner_x - body.wall / 2) * math.sin(angle)
            ry = cy - (body.inner_y - body.wall / 2) * math.cos(angle)
            paint(rx, ry, rib_r, rib_r, HU_RIB, Tissue.BONE)
