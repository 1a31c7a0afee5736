"""The measured PET as SUVbw on its own grid, sampled where a view of the CT needs it.

The uptake tables take the labels to the PET grid (``habitus.pet.tissue``); a picture goes the
other way: it shows the PET over a CT slice, so it asks for the SUV at each CT pixel centre.
Values are interpolated trilinearly between the PET voxel centres, in patient coordinates,
and are NaN where the CT pixel lies outside the PET's field of view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.volume import Geometry


@dataclass(frozen=True)
class SuvImage:
    """SUVbw (g/ml) of the analysed PET, (k, j, i) on ``geometry``, with its series
    description for captions."""

    suv: NDArray[np.float32]
    geometry: Geometry
    description: str = ""

    def on_ct_slice(self, ct: Geometry, k: int, shape: tuple[int, int]) -> NDArray[np.float32]:
        """SUVbw at the pixel centres of slice ``k`` of a CT of slice ``shape`` (rows,
        columns) on ``ct``; NaN outside the PET."""
        rows, columns = shape
        j, i = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
        ct_index = np.stack([np.full(j.shape, k), j, i, np.ones(j.shape)]).reshape(4, -1)
        to_pet = np.linalg.inv(self.geometry.affine) @ ct.affine
        index = (to_pet @ ct_index)[:3]
        # A point within half a voxel of the outer centres still lies in the PET's field of
        # view: it takes the edge value (mode "nearest") rather than a blend with nothing.
        extent = np.asarray(self.suv.shape, dtype=np.float64)[:, np.newaxis]
        inside = np.all((index >= -0.5) & (index <= extent - 0.5), axis=0)
        values = ndimage.map_coordinates(self.suv, index, order=1, mode="nearest")
        return np.where(inside, values, np.nan).astype(np.float32).reshape(rows, columns)
