"""The skin: the outer rim of the body, about 2 mm deep and at least one voxel.

On coarse pixels the voxel under the rim often still holds dermis in partial volume with
the fat below it; where it reads as soft tissue and fat lies right beneath, it is skin too.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.labels import FAT_HU
from habitus.segment.rules.morphology import IN_PLANE, Mask, erode_2d

SKIN_DEPTH_MM = 2.0


def skin_mask(
    body: Mask, spacing: tuple[float, float, float], hu: NDArray[np.int16] | None = None
) -> Mask:
    """The rim of every axial slice of the body (with the dermis under it, given ``hu``).

    Erosion treats the image border as body, so a body cut by the field of view gets no skin
    along the cut. Slices are handled one by one: the first and last slice of a scan are
    cuts through the body, not its surface.
    """
    core = erode_2d(body, SKIN_DEPTH_MM, (spacing[1], spacing[2]), border_value=1)
    rim = body & ~core
    if hu is None:
        return rim
    deeper = ndimage.binary_erosion(core, IN_PLANE, border_value=1)
    under = core & ~deeper
    fat = hu <= FAT_HU[1]
    dermis = under & ~fat & ndimage.binary_dilation(deeper & fat, IN_PLANE)
    return rim | dermis
