"""Phantoms with the muscles inside the body wall picked out, and their vertebral levels.

A phantom's labels are exact but say only "muscle": the psoas, the crura and the iliacus
are painted with the same label as the wall. They are found here by recording which voxels
the painting of the abdomen and the pelvis painted as muscle (and still are muscle once the
whole body is painted: later organs, fat and bone may take some back). The psoas is painted
into a gutter carved out of the back muscles, so its voxels were muscle before too. The
kidneys are recorded the same way. The vertebral level of every slice comes from the
phantom's body plan (0 at the top of C1, 19 at T12/L1, 24 at L5/S1; every slice below S1
reads 24).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

import numpy as np
from numpy.typing import NDArray

from habitus.labels import Tissue
from habitus.phantoms import structures as phantom_body
from habitus.phantoms.canvas import Canvas
from habitus.phantoms.generator import Phantom, make_phantom
from habitus.phantoms.materials import Material
from habitus.phantoms.structures import VERTEBRA

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
    """Render phantom ``seed`` and record where its psoas, crura and iliacus were painted."""
    painted: list[Mask] = []
    levels: list[NDArray[np.float64]] = []
    above: list[Mask] = []

    active: list[Mask] = []  # the muscle painted by the running abdomen() or pelvis()
    kidneys: list[Mask] = []
    canvas_paint = Canvas.paint

    def paint(canvas: Canvas, ks: slice, mask: Mask, label: int, material: Any) -> None:
        canvas_paint(canvas, ks, mask, label, material)
        if active and label == Tissue.MUSCLE:
            active[-1][ks] |= mask
        if material == Material.KIDNEY:
            if not kidneys:
                kidneys.append(np.zeros(canvas.labels.shape, dtype=bool))
            kidneys[0][ks] |= mask

    def recording(method: Callable[..., None]) -> Callable[..., None]:
        def run(self: Any, *args: Any) -> None:
            active.append(np.zeros(self.c.labels.shape, dtype=bool))
            method(self, *args)
            painted.append(active.pop())
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
        mock.patch.object(Canvas, "paint", paint),
        mock.patch.object(phantom_body.Body, "abdomen", recording(phantom_body.Body.abdomen)),
        mock.patch.object(phantom_body.Body, "pelvis", recording(phantom_body.Body.pelvis)),
    ):
        phantom = make_phantom(seed, spacing_mm=spacing_mm, scan_range=scan_range)
    # The canvas runs head to foot; the volume runs foot to head.
    inner = np.zeros(phantom.labels.shape, dtype=bool)
    for mask in painted:
        inner |= mask[::-1]
    inner &= phantom.labels == Tissue.MUSCLE
    iliacus = painted[-1][::-1] & inner if painted else np.zeros_like(inner)
    kidney = kidneys[0][::-1] & (phantom.labels == Tissue.IO) if kidneys else np.zeros_like(inner)
    shape = phantom.labels.shape
    level = levels[0][::-1] if levels else np.full(shape[0], np.nan)
    over = above[0][::-1] if above else np.zeros(shape, dtype=bool)
    return PhantomAnatomy(
        phantom,
        inner,
        np.ascontiguousarray(iliacus),
        np.ascontiguousarray(kidney),
        level,
        np.ascontiguousarray(over),
    )
