"""The skin: the outer rim of the body, about 2 mm deep and at least one voxel."""

from __future__ import annotations

from habitus.segment.rules.morphology import Mask, erode_2d

SKIN_DEPTH_MM = 2.0


def skin_mask(body: Mask, spacing: tuple[float, float, float]) -> Mask:
    """The rim of every axial slice of the body.

    Erosion treats the image border as body, so a body cut by the field of view gets no skin
    along the cut. Slices are handled one by one: the first and last slice of a scan are
    cuts through the body, not its surface.
    """
    core = erode_2d(body, SKIN_DEPTH_MM, (spacing[1], spacing[2]), border_value=1)
    return body & ~core
