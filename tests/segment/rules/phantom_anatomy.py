"""Phantoms with the muscles inside the body wall picked out, and their vertebral levels.

A phantom's labels are exact but say only "muscle": the psoas, the crura and the iliacus
are painted with the same label as the wall. They are found here by recording which voxels
the painting of the abdomen and the pelvis turned into muscle (and still are muscle once the
whole body is painted). The vertebral level of every slice comes from the phantom's body
plan (0 at the top of C1, 19 at T12/L1, 24 at L5/S1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

import numpy as np
from numpy.typing import NDArray

from habitus.labels import Tissue
from model_export.phantoms import body as phantom_body
from model_export.phantoms.body import VERTEBRA
from model_export.phantoms.generator import Phantom, make_phantom

Mask = NDArray[np.bool_]

# Vertebral coordinate of the top of each lumbar vertebra and of the sacrum.
LUMBAR = {"L1": 19.0, "L2": 20.0, "L3": 21.0, "L4": 22.0, "L5": 23.0, "S1": 24.0}


@dataclass(frozen=True)
class PhantomAnatomy:
    phantom: Phantom
    inner_muscle: Mask  # psoas, crura and iliacus: muscle inside the body wall
    level: NDArray[np.float64]  # vertebral coordinate of each slice (volume order)
    above_diaphragm: Mask  # inside the trunk's cavity, above the diaphragm's domes (exact)

    def slices_of(self, start: float, stop: float) -> NDArray[np.int64]:
        """Slice indices whose vertebral coordinate lies in [start, stop)."""
        return np.nonzero((self.level >= start) & (self.level < stop))[0]


def phantom_anatomy(
    seed: int, spacing_mm: tuple[float, float, float], scan_range: str
) -> PhantomAnatomy:
    """Render phantom ``seed`` and record where its psoas, crura and iliacus were painted."""
    painted: list[Mask] = []
    levels: list[NDArray[np.float64]] = []
    above: list[Mask] = []

    def recording(method: Callable[..., None]) -> Callable[..., None]:
        def run(self: Any, *args: Any) -> None:
            before = self.c.labels == Tissue.MUSCLE
            method(self, *args)
            painted.append((self.c.labels == Tissue.MUSCLE) & ~before)
            if not levels:
                levels.append(np.asarray(VERTEBRA(self.c.u / self.H), dtype=np.float64))
                rows = slice(0, self.c.u.size)
                f = self.c.u / self.H
                in_trunk = ((f >= 0.168) & (f <= phantom_body.PELVIC_FLOOR))[:, None, None]
                cavity = self.c.ellipse(
                    rows,
                    0.0,
                    self.cy_c[:, None, None],
                    self.a_c[:, None, None],
                    self.b_c[:, None, None],
                    power=2.2,
                )
                dome = self.dome_u(rows)
                above.append(cavity & in_trunk & (self.c.u[:, None, None] < dome))

        return run

    with (
        mock.patch.object(phantom_body.Body, "abdomen", recording(phantom_body.Body.abdomen)),
        mock.patch.object(phantom_body.Body, "pelvis", recording(phantom_body.Body.pelvis)),
    ):
        phantom = make_phantom(seed, spacing_mm=spacing_mm, scan_range=scan_range)
    # The canvas runs head to foot; the volume runs foot to head.
    inner = np.zeros(phantom.labels.shape, dtype=bool)
    for mask in painted:
        inner |= mask[::-1]
    inner &= phantom.labels == Tissue.MUSCLE
    shape = phantom.labels.shape
    level = levels[0][::-1] if levels else np.full(shape[0], np.nan)
    over = above[0][::-1] if above else np.zeros(shape, dtype=bool)
    return PhantomAnatomy(phantom, inner, level, np.ascontiguousarray(over))
