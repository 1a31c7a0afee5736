"""The skeleton's plan the trunk phantoms share: vertebrae stacked with their discs, and the
iliac wing as a plate seen in an axial slice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


def stack_vertebrae(
    bottom: float, bodies: Sequence[tuple[str, float, float]]
) -> dict[str, tuple[float, float]]:
    """(bottom, top) in mm of each vertebral body, stacked from ``bottom`` up; ``bodies`` are
    (name, height, disc above it) from the sacrum upward."""
    levels: dict[str, tuple[float, float]] = {}
    z = bottom
    for name, height, disc in bodies:
        levels[name] = (z, z + height)
        z += height + disc
    return levels


def plate(x: F64, y: F64, p0: F64, p1: F64, half_thickness: float) -> tuple[F64, NDArray[np.bool_]]:
    """A plate from ``p0`` to ``p1`` (x, y in mm) in a slice: where along it each point lies
    (0 at ``p0``, 1 at ``p1``), and which points lie inside it."""
    d = p1 - p0
    length = float(np.hypot(*d))
    along = ((x - p0[0]) * d[0] + (y - p0[1]) * d[1]) / length**2
    dist = np.abs((x - p0[0]) * d[1] - (y - p0[1]) * d[0]) / length
    return along, (along >= 0.0) & (along <= 1.0) & (dist <= half_thickness)
