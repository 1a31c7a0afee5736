"""The trunk with a skeleton: the anatomy of the demo's PET-CT study (``habitus demo``).

Anatomy at fixed heights around L3: vertebral bodies and discs from the sacrum up, twelve
pairs of ribs that run down and outward from their vertebrae, iliac wings with their crests,
so that the last rib, the iliac crest and L3 can be found and the waist between them
measured. ``habitus.phantoms.studies`` writes it as a study.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from habitus.labels import Tissue
from habitus.phantoms.bone_plan import plate, stack_vertebrae
from habitus.phantoms.slices import (
    HU_AIR,
    HU_AORTA,
    HU_BOWEL,
    HU_CANCELLOUS,
    HU_CORTICAL,
    HU_LIVER,
    HU_LUNG,
    HU_MUSCLE,
    HU_RIB,
    Layout,
    SliceCanvas,
    axis_mm,
    body_layout,
    paint_aorta,
    paint_arch,
    paint_kidneys,
    paint_liver,
    paint_paraspinal,
    paint_vertebral_body,
    paint_wall,
    with_noise,
)

# Heights are in mm above the middle of L3 (negative below it). Lumbar bodies are 25 mm tall
# with 8 mm discs, thoracic bodies 20 mm with 6 mm discs; the sacrum carries its alae at the
# top. Twelve pairs of ribs run from their vertebrae back and out, then round the body wall,
# descending; the iliac wings rise from the sacroiliac joints to their crest at L4, highest
# laterally. With the default scan (120 slices of 2 mm centred on L3) the waist, from the
# lowest rib down to the crest, lies inside the scan with L3 in it; the sacrum below and the
# twelfth rib's vertebra above let the vertebrae be counted from either end.

LUMBAR_BODY_MM, LUMBAR_DISC_MM = 25.0, 8.0
THORACIC_BODY_MM, THORACIC_DISC_MM = 20.0, 6.0
SACRUM_HEIGHT_MM = 100.0
ALAE_HEIGHT_MM = 60.0
ALAE_HALF_WIDTH_MM = 56.0
ILIAC_CREST_MM = -35.0  # the highest point of the iliac wings, laterally
ILIAC_DROP_MM = 35.0  # the wing's top edge falls this much from the crest to the joint
ILIAC_BOTTOM_MM = -160.0
ACETABULUM_MM = (-200.0, -150.0)
RIB_RADIUS_MM = 5.0
RIB_SLOPE = 0.35  # mm of descent per mm along a rib
RIB_LENGTH_MM = {10: 250.0, 11: 200.0, 12: 130.0}  # the others: RIB_LENGTH_DEFAULT_MM
RIB_LENGTH_DEFAULT_MM = 290.0
LUNG_BASE_MM = 70.0  # the posterior recesses of the lungs reach down to L1
DIAPHRAGM_MM = 100.0  # above it the cavity's fat is intrathoracic
HU_DISC = 70
BOWEL_LOOPS = tuple(  # centres, as fractions of the abdominal cavity's semi-axes
    (bx, by) for by in (-0.55, -0.15, 0.25) for bx in (-0.6, -0.2, 0.2, 0.6)
)


def vertebral_levels() -> dict[str, tuple[float, float]]:
    """(bottom, top) of each vertebral body in mm above the middle of L3; "S1" is the sacrum."""
    lumbar = [(f"L{n}", LUMBAR_BODY_MM, LUMBAR_DISC_MM) for n in range(5, 0, -1)]
    thoracic = [(f"T{n}", THORACIC_BODY_MM, THORACIC_DISC_MM) for n in range(12, 0, -1)]
    levels = stack_vertebrae(0.0, [("S1", SACRUM_HEIGHT_MM, LUMBAR_DISC_MM), *lumbar, *thoracic])
    middle = sum(levels["L3"]) / 2.0
    return {name: (lo - middle, hi - middle) for name, (lo, hi) in levels.items()}


LEVELS = vertebral_levels()


def _layout(a: float, fov_x: float, fov_y: float) -> Layout:
    bulge = math.cos(math.pi * min(abs(a), 240.0) / 480.0)  # widest at L3
    return body_layout(bulge, fov_x, fov_y, fat=17.0, wall=18.0)


def synthetic_trunk(
    shape: tuple[int, int, int] = (120, 256, 256),
    spacing: tuple[float, float, float] = (2.0, 1.5625, 1.5625),
    seed: int = 0,
    z_start: float = -400.0,
    l3_z: float | None = None,
) -> tuple[NDArray[np.int16], NDArray[np.uint8]]:
    """A trunk with its skeleton: (HU, labels), both (k, j, i); slice k lies at
    ``z_start + k * spacing[0]`` (mm, towards the head). The middle of L3 lies at ``l3_z``,
    by default the middle of the scan."""
    hu, labels = trunk_anatomy(shape, spacing, z_start, l3_z)
    return with_noise(hu, seed), labels


def trunk_anatomy(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    z_start: float,
    l3_z: float | None,
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """The noiseless trunk: (HU, labels)."""
    nk, nj, ni = shape
    dz, dy, dx = spacing
    if l3_z is None:
        l3_z = z_start + (nk - 1) * dz / 2.0
    x, y = axis_mm(ni, dx), axis_mm(nj, dy)
    fov_x, fov_y = ni * dx, nj * dy
    hu = np.full(shape, HU_AIR, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    ribs = _rib_paths(fov_x, fov_y)
    for k in range(nk):
        a = z_start + k * dz - l3_z
        canvas = SliceCanvas(hu[k], labels[k], x, y)
        layout = _layout(a, fov_x, fov_y)
        _paint_trunk_slice(canvas, a, layout, fov_x)
        for path in ribs:
            _paint_tube(canvas, path, a, RIB_RADIUS_MM * layout.scale, HU_RIB)
        _paint_pelvis(canvas, a, layout)
    return hu, labels


def _level_at(a: float) -> str | None:
    """The vertebral body at height ``a``, or None in a disc (or beyond the spine)."""
    return next((name for name, (lo, hi) in LEVELS.items() if lo <= a < hi), None)


def _paint_trunk_slice(canvas: SliceCanvas, a: float, body: Layout, fov_x: float) -> None:
    paint = canvas.ellipse
    s, cy, r = body.scale, body.cy, body.body_r
    cav_x, cav_y, vy = body.cav_x, body.cav_y, body.vy
    thorax = a > DIAPHRAGM_MM
    paint_wall(canvas, body, fov_x, Tissue.SF if thorax else Tissue.AVF)

    if a > LUNG_BASE_MM:  # lungs, from their posterior recesses up
        f = min(1.0, (a - LUNG_BASE_MM) / 80.0) ** 0.5
        for side in (-1.0, 1.0):
            lung_y = cy + (0.45 - 0.5 * f) * cav_y
            paint(
                side * 0.5 * cav_x,
                lung_y,
                0.42 * f * cav_x,
                0.8 * f * cav_y,
                HU_LUNG,
                Tissue.BACKGROUND,
            )
    if a > 0.0:  # the liver, its tip at L3
        paint_liver(canvas, body, size=min(1.0, 0.4 + a / 100.0))
    if 60.0 < a < 150.0:  # spleen, left and back
        paint(0.55 * cav_x, cy + 0.25 * cav_y, 0.18 * cav_x, 0.3 * cav_y, HU_LIVER, Tissue.IO)
    if -35.0 < a < 80.0:
        paint_kidneys(canvas, body)
    if a < 60.0:
        for bx, by in BOWEL_LOOPS:
            if a < 30.0 or bx > 0:  # bowel loops, fewer beside the liver
                paint(bx * cav_x, cy + by * cav_y, 0.17 * cav_x, 0.19 * cav_y, HU_BOWEL, Tissue.IO)
    if a < 75.0:  # psoas beside the vertebral bodies, growing downward
        f = min(1.3, 0.5 + (75.0 - a) / 150.0)
        for side in (-1.0, 1.0):
            paint(
                side * (1.2 + 0.7 * f) * r, vy, 0.9 * f * r, 1.1 * f * r, HU_MUSCLE, Tissue.MUSCLE
            )
    if a > ILIAC_CREST_MM:  # aorta, left-anterior of the spine; below L4 the iliac arteries
        paint_aorta(canvas, body)
    else:
        apart = 1.3 * r + 0.5 * (ILIAC_CREST_MM - a) * s
        for side in (-1.0, 1.0):
            paint(side * apart, vy - 1.3 * r, 0.4 * r, 0.4 * r, HU_AORTA, Tissue.IO)
    paint_paraspinal(canvas, body)
    _paint_spine(canvas, a, body)


def _paint_spine(canvas: SliceCanvas, a: float, body: Layout) -> None:
    """Vertebral body (or disc), canal with cord, posterior arch, processes, sacral alae."""
    paint = canvas.ellipse
    s, r, vy, canal_y = body.scale, body.body_r, body.vy, body.canal_y
    sacrum_lo, sacrum_hi = LEVELS["S1"]
    if a < sacrum_lo:
        return
    level = _level_at(a)
    if level is None:
        paint(0, vy, r, r, HU_DISC, Tissue.IO)
    else:
        paint_vertebral_body(canvas, body)
    if level == "S1" and a >= sacrum_hi - ALAE_HEIGHT_MM:  # the alae, out to the joints
        # cortex round cancellous bone, as every bone has: a bright rim, not a smooth blob
        paint(0, vy + 2.0 * s, ALAE_HALF_WIDTH_MM * s, 13.0 * s, HU_CORTICAL, Tissue.BONE)
        paint(0, vy + 2.0 * s, (ALAE_HALF_WIDTH_MM - 2.0) * s, 11.0 * s, HU_CANCELLOUS, Tissue.BONE)
    if level is not None and level.startswith("L"):
        lo, hi = LEVELS[level]
        if abs(a - (lo + hi) / 2.0) <= 6.0:  # transverse processes
            for side in (-1.0, 1.0):
                paint(
                    side * 28.0 * s, canal_y + 1.0 * s, 15.0 * s, 4.0 * s, HU_CORTICAL, Tissue.BONE
                )
    paint(0, canal_y + 14.0 * s, 4.0 * s, 12.0 * s, HU_CORTICAL, Tissue.BONE)  # spinous
    paint_arch(canvas, body, canal=a > sacrum_lo + 30.0)


def _rib_paths(fov_x: float, fov_y: float) -> list[NDArray[np.float64]]:
    """Points (x, y, height) every mm along each rib, right and left.

    A rib leaves its vertebra (head beside the body's middle) backward and outward to its
    angle in the body wall, then runs forward round the middle of the muscle wall,
    descending ``RIB_SLOPE`` mm per mm.
    """
    paths: list[NDArray[np.float64]] = []
    for n in range(1, 13):
        lo, hi = LEVELS[f"T{n}"]
        head_a = (lo + hi) / 2.0
        body = _layout(head_a, fov_x, fov_y)
        s = body.scale
        rx, ry = body.inner_x - body.wall / 2.0, body.inner_y - body.wall / 2.0
        head = np.array([22.0 * s, body.vy + 5.0 * s])
        theta = math.pi - math.asin(min(1.0, 65.0 * s / rx))  # the angle, behind
        angle = np.array([rx * math.sin(theta), body.cy - ry * math.cos(theta)])
        first = float(np.hypot(*(angle - head)))
        points = [head + (angle - head) * t / first for t in np.arange(0.0, first, 1.0)]
        length = RIB_LENGTH_MM.get(n, RIB_LENGTH_DEFAULT_MM) * s
        while len(points) < length:
            theta -= 1.0 / math.hypot(rx * math.cos(theta), ry * math.sin(theta))
            points.append(np.array([rx * math.sin(theta), body.cy - ry * math.cos(theta)]))
        xy = np.array(points)
        z = head_a - RIB_SLOPE * np.arange(len(xy)) / s
        for side in (-1.0, 1.0):
            paths.append(np.column_stack([side * xy[:, 0], xy[:, 1], z]))
    return paths


def _paint_tube(
    canvas: SliceCanvas, path: NDArray[np.float64], a: float, radius: float, value: float
) -> None:
    """The slice at height ``a`` through a tube of ``radius`` (mm) round ``path``."""
    near = np.abs(path[:, 2] - a) <= radius
    if not near.any():
        return
    px, py = path[near, 0], path[near, 1]
    rad2 = radius**2 - (path[near, 2] - a) ** 2
    cols = np.flatnonzero((canvas.x >= px.min() - radius) & (canvas.x <= px.max() + radius))
    rows = np.flatnonzero((canvas.y >= py.min() - radius) & (canvas.y <= py.max() + radius))
    if not cols.size or not rows.size:
        return
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    dx2 = (canvas.x[box[1]][np.newaxis, :] - px[:, np.newaxis]) ** 2
    dy2 = (canvas.y[box[0]][np.newaxis, :] - py[:, np.newaxis]) ** 2
    mask = ((dy2[:, :, np.newaxis] + dx2[:, np.newaxis, :]) <= rad2[:, None, None]).any(axis=0)
    canvas.hu[box][mask] = value
    canvas.labels[box][mask] = int(Tissue.BONE)


def _paint_pelvis(canvas: SliceCanvas, a: float, body: Layout) -> None:
    """Iliac wings: a 9 mm plate from the sacroiliac joint forward and out to the crest,
    whose top edge falls ``ILIAC_DROP_MM`` from the crest to the joint; below them the
    acetabula and femoral heads."""
    if a > ILIAC_CREST_MM or a < ACETABULUM_MM[0]:
        return
    s, vy = body.scale, body.vy
    p0 = np.array([60.0 * s, vy + 5.0 * s])
    p1 = np.array([122.0 * s, vy - 60.0 * s])
    cols = np.flatnonzero(np.abs(canvas.x) <= p1[0] + 6.0 * s)
    rows = np.flatnonzero((canvas.y >= p1[1] - 6.0 * s) & (canvas.y <= p0[1] + 6.0 * s))
    if not cols.size or not rows.size:
        return
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    xx = np.abs(canvas.x[box[1]])[np.newaxis, :]
    yy = canvas.y[box[0]][:, np.newaxis]
    t, wing = plate(xx, yy, p0, p1, 4.5 * s)
    wing &= a <= ILIAC_CREST_MM - ILIAC_DROP_MM * (1.0 - t)
    if a < ILIAC_BOTTOM_MM:
        wing[:] = False
    canvas.hu[box][wing] = HU_RIB
    canvas.labels[box][wing] = int(Tissue.BONE)
    if ACETABULUM_MM[0] <= a <= ACETABULUM_MM[1]:
        for side in (-1.0, 1.0):
            canvas.ellipse(side * 85.0 * s, vy - 45.0 * s, 18.0 * s, 18.0 * s, HU_RIB, Tissue.BONE)
            canvas.ellipse(side * 110.0 * s, vy - 45.0 * s, 14.0 * s, 14.0 * s, HU_RIB, Tissue.BONE)
