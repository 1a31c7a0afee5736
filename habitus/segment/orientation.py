"""The orientation a model sees: slices head-ward, rows to the back, columns to the left.

A model learns anatomy in one orientation. Volumes arrive in others (feet-first DICOM,
RAS NIfTI), so the engine flips the axes that run the other way before inference and flips
the labels back after. Only flips: the axes of an axial volume already follow the body's.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from habitus.volume import Geometry

A = TypeVar("A", bound=np.ndarray)


def canonical_flips(geometry: Geometry) -> tuple[bool, bool, bool]:
    """Which of the (k, j, i) axes run against LPS +z (head), +y (back), +x (left)."""
    m = geometry.matrix
    return (bool(m[2, 0] < 0), bool(m[1, 1] < 0), bool(m[0, 2] < 0))


def flip_axes(array: A, flips: tuple[bool, bool, bool]) -> A:
    """``array`` with the flagged axes reversed (a contiguous copy; flipping twice undoes it)."""
    index = tuple(slice(None, None, -1) if f else slice(None) for f in flips)
    flipped: A = np.ascontiguousarray(array[index])  # type: ignore[assignment]
    return flipped
