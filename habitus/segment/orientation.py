"""The canonical anatomical view of a volume, which the rules and the model both reason in.

Canonical axes are (superior, posterior, left): axis 0 grows towards the head (LPS +z), axis 1
(rows) from the front of the body to the back (+y), axis 2 (columns) from the patient's right
to the left (+x), which is how an axial CT slice is displayed and how the model was trained.
Volumes arrive in other orders and senses (feet-first DICOM, RAS NIfTI, coronal or sagittal
reconstructions); any axis-aligned one maps onto that view by a transpose and flips only, so
nothing is resampled and labels map back exactly. An axial volume needs flips alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from habitus.errors import GeometryRefused
from habitus.volume import Geometry

T = TypeVar("T", bound=np.generic)
A = TypeVar("A", bound=np.ndarray)

# LPS component of each canonical axis: z (towards the head), y (posterior), x (left).
_CANONICAL_LPS_COMPONENTS = (2, 1, 0)
_MIN_ALIGNMENT = 0.7  # |cos| between an array axis and its anatomical axis: about 45 degrees
_AXIAL_ORDER = (0, 1, 2)


@dataclass(frozen=True)
class CanonicalFrame:
    """How the source array's axes become the canonical (superior, posterior, left) axes."""

    source_axes: tuple[int, int, int]  # source array axis feeding canonical axes 0, 1, 2
    flipped: tuple[bool, bool, bool]  # whether canonical axis n runs against its source axis
    spacing: tuple[float, float, float]  # mm along the canonical axes

    @classmethod
    def of(cls, geometry: Geometry) -> CanonicalFrame:
        """The frame of a volume, from the direction cosines of its array axes."""
        m = geometry.matrix  # columns: the k, j, i axes in LPS
        alignment = np.abs(m)
        source: list[int] = []
        flipped: list[bool] = []
        for lps in _CANONICAL_LPS_COMPONENTS:
            axis = int(np.argmax(alignment[lps]))
            if axis in source or alignment[lps, axis] < _MIN_ALIGNMENT:
                raise GeometryRefused(
                    "expected array axes roughly along the patient's left-right, "
                    "front-back and head-feet directions (within about 45 degrees); found "
                    f"direction cosines {np.round(m, 3).tolist()}"
                )
            source.append(axis)
            flipped.append(bool(m[lps, axis] < 0))
        spacing = tuple(float(geometry.spacing[a]) for a in source)
        return cls(
            source_axes=(source[0], source[1], source[2]),
            flipped=(flipped[0], flipped[1], flipped[2]),
            spacing=(spacing[0], spacing[1], spacing[2]),
        )

    @property
    def needs_transpose(self) -> bool:
        """Whether the source axes come in another order than the canonical ones."""
        return self.source_axes != _AXIAL_ORDER

    def to_canonical(self, array: NDArray[T]) -> NDArray[T]:
        """View ``array`` (source axis order) in the canonical orientation (no copy)."""
        out = np.transpose(array, self.source_axes)
        for axis, flip in enumerate(self.flipped):
            if flip:
                out = np.flip(out, axis)
        return out

    def from_canonical(self, array: NDArray[T]) -> NDArray[T]:
        """Map a canonical-orientation array back onto the source grid (contiguous copy)."""
        out = array
        for axis, flip in enumerate(self.flipped):
            if flip:
                out = np.flip(out, axis)
        return np.ascontiguousarray(np.transpose(out, np.argsort(self.source_axes)))


def canonical_flips(geometry: Geometry) -> tuple[bool, bool, bool]:
    """Which of the (k, j, i) axes of an axial volume run against LPS +z, +y and +x.

    For volumes whose axes are already in canonical order (training data is); any other
    order is refused, since flips alone would leave it transposed."""
    frame = CanonicalFrame.of(geometry)
    if frame.needs_transpose:
        raise GeometryRefused(
            "expected (k, j, i) axes along head-feet, front-back and left-right (an axial "
            f"volume); found direction cosines {np.round(geometry.matrix, 3).tolist()}"
        )
    return frame.flipped


def flip_axes(array: A, flips: tuple[bool, bool, bool]) -> A:
    """``array`` with the flagged axes reversed (a contiguous copy; flipping twice undoes it)."""
    index = tuple(slice(None, None, -1) if f else slice(None) for f in flips)
    flipped: A = np.ascontiguousarray(array[index])  # type: ignore[assignment]
    return flipped
