"""Phantoms with the muscles inside the body wall picked out, and their vertebral levels.

A phantom's labels are exact but say only "muscle": the psoas, the crura and the iliacus
are painted with the same label as the wall. The generator paints them as named parts
(``Phantom.parts``: where each was painted and still is muscle once the whole body is
painted), the kidneys and the thoracic cavity too, and gives each slice's vertebral level
from its body plan (0 at the top of C1, 19 at T12/L1, 24 at L5/S1; every slice below S1
reads 24). This module only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from habitus.phantoms.generator import Phantom, make_phantom

Mask = NDArray[np.bool_]

# Vertebral coordinate of the top of each lumbar vertebra and of the sacrum.
LUMBAR = {"L1": 19.0, "L2": 20.0, "L3": 21.0, "L4": 22.0, "L5": 23.0, "S1": 24.0}


@dataclass(frozen=True)
class PhantomAnatomy:
    phantom: Phantom
    inner_muscle: Mask  # psoas, crura and iliacus: muscle inside the body wall
    iliacus: Mask  # the part of inner_muscle painted with the pelvis (the iliacus)
    kidneys: Mask  # where the kidneys were painted (and still are organ)
    level: NDArray[np.float64]  # vertebral coordinate of each slice (volume order)
    above_diaphragm: Mask  # inside the trunk's cavity, above the diaphragm's domes (exact)

    def slices_of(self, start: float, stop: float) -> NDArray[np.int64]:
        """Slice indices whose vertebral coordinate lies in [start, stop)."""
        return np.nonzero((self.level >= start) & (self.level < stop))[0]


def phantom_anatomy(
    seed: int, spacing_mm: tuple[float, float, float], scan_range: str
) -> PhantomAnatomy:
    """Render phantom ``seed`` with its psoas, crura, iliacus, kidneys and thoracic cavity."""
    phantom = make_phantom(seed, spacing_mm=spacing_mm, scan_range=scan_range)
    parts = phantom.parts
    none = np.zeros(phantom.labels.shape, dtype=bool)
    iliacus = parts.get("iliacus", none)
    inner = parts.get("psoas", none) | parts.get("crura", none) | iliacus
    return PhantomAnatomy(
        phantom,
        inner,
        iliacus,
        parts.get("kidneys", none),
        phantom.vertebra,
        parts.get("thoracic_cavity", none),
    )
