"""Small hand-built volumes for the anatomical steps: ellipses in millimetres, canonical axes.

Canonical means (superior, posterior, left): slice 0 is the lowest, rows run from the front
of the body to the back, columns from the patient's right to the left.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

PIXEL_MM = 2.0
SLICE_MM = 3.0
SPACING = (SLICE_MM, PIXEL_MM, PIXEL_MM)


def grid(rows: int = 160, cols: int = 220) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Row and column coordinates in mm from the middle of the slice."""
    y = np.asarray((np.arange(rows) - rows / 2) * PIXEL_MM, dtype=np.float64)
    x = np.asarray((np.arange(cols) - cols / 2) * PIXEL_MM, dtype=np.float64)
    return y[:, np.newaxis], x[np.newaxis, :]


def ellipse(cy: float, cx: float, ry: float, rx: float, rows: int = 160, cols: int = 220):
    y, x = grid(rows, cols)
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def trunk_with_arms(slices: int = 12, arm_gap_mm: float = 8.0, neck_mm: float = 0.0):
    """A trunk (fat over muscle), a table plate behind it and an arm with bone on each side.

    ``arm_gap_mm`` is the air between trunk and arms; with ``neck_mm`` > 0 the left arm is
    joined to the trunk by a bridge of soft tissue that many millimetres wide.
    Returns HU and the masks (trunk, arms, table), all (slices, rows, cols).
    """
    trunk_2d = ellipse(0, 0, 90, 130)
    hu_2d = np.full(trunk_2d.shape, -1000.0)
    hu_2d[trunk_2d] = -100.0
    hu_2d[ellipse(0, 0, 75, 115)] = 40.0
    arms_2d = np.zeros_like(trunk_2d)
    for side in (-1, 1):
        cx = side * (130 + arm_gap_mm + 40)
        arm = ellipse(0, cx, 45, 40)
        arms_2d |= arm
        hu_2d[arm] = -80.0
        hu_2d[ellipse(0, cx, 35, 30)] = 45.0
        hu_2d[ellipse(0, cx, 10, 10)] = 800.0
    if neck_mm > 0:
        y, x = grid()
        bridge = (np.abs(y) <= neck_mm / 2) & (x > 100) & (x < 130 + arm_gap_mm + 10)
        hu_2d[bridge & ~trunk_2d & ~arms_2d] = 30.0
    table_2d = np.zeros_like(trunk_2d)
    y, x = grid()
    table_2d[(y >= 100) & (y < 104) & (np.abs(x) < 200)] = True
    hu_2d[table_2d] = 300.0
    hu = np.repeat(hu_2d[np.newaxis], slices, axis=0)
    rng = np.random.default_rng(1)
    hu = hu + rng.normal(0, 5, hu.shape)
    stack = lambda m: np.repeat(m[np.newaxis], slices, axis=0)  # noqa: E731
    return hu.astype(np.int16), stack(trunk_2d), stack(arms_2d), stack(table_2d)
