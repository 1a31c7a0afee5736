"""The synthetic phantoms: CT anatomy painted from ellipses and tubes, with its labels.

Both phantoms are built in millimetres, so the same anatomy appears at any grid size: skin,
subcutaneous fat, a muscle wall, visceral fat, organs, a spine with its canal and cord,
paraspinal and psoas muscles, lungs, ribs and a table behind the patient. Labels follow
:class:`habitus.labels.Tissue`.

- ``synthetic_torso`` spreads its anatomy over the scan, whatever its length: lungs and
  rings of rib in the upper part, a vertebral column without discs.
- ``synthetic_trunk`` (the PET-CT study, hence ``habitus demo``) places its anatomy at fixed
  heights around L3: vertebral bodies and discs from the sacrum up, twelve pairs of ribs that
  run down and outward from their vertebrae, iliac wings with their crests, so that the last
  rib, the iliac crest and L3 can be found and the waist between them measured.

``habitus.dicom.synthetic`` writes them as DICOM series and studies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from habitus.labels import Tissue

# Mean HU of each structure; noise is added on top.
HU_AIR = -1000
HU_FAT = -100
HU_MUSCLE = 50
HU_SKIN = 30
HU_LIVER = 58
HU_KIDNEY = 45
HU_BOWEL = 38
HU_AORTA = 48
HU_LUNG = -850
HU_CANCELLOUS = 400
HU_CORTICAL = 1000
HU_RIB = 700
HU_CSF = 10
HU_CORD = 35
HU_TABLE = 150
NOISE_HU = 8.0


# --- the phantom -------------------------------------------------------------------------


def synthetic_torso(
    shape: tuple[int, int, int] = (64, 128, 128),
    spacing: tuple[float, float, float] = (2.5, 3.0, 3.0),
    seed: int = 0,
) -> tuple[NDArray[np.int16], NDArray[np.uint8]]:
    """A torso of ellipses: (HU, labels), both (k, j, i); slice 0 is the caudal end."""
    nk, nj, ni = shape
    _, dy, dx = spacing
    rng = np.random.default_rng(seed)
    x = np.asarray((np.arange(ni) - (ni - 1) / 2.0) * dx, dtype=np.float64)  # mm, +x: left
    y = np.asarray((np.arange(nj) - (nj - 1) / 2.0) * dy, dtype=np.float64)  # mm, +y: back
    hu = np.full(shape, HU_AIR, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    for k in range(nk):
        t = k / max(nk - 1, 1)  # 0 at the caudal end, 1 at the cranial end
        _paint_slice(_Canvas(hu[k], labels[k], x, y), t, ni * dx, nj * dy)
    hu += rng.normal(0.0, NOISE_HU, size=shape).astype(np.float32)
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16), labels


@dataclass
class _Canvas:
    """One slice being painted; shapes are drawn only inside their bounding box."""

    hu: NDArray[np.float32]
    labels: NDArray[np.uint8]
    x: NDArray[np.float64]
    y: NDArray[np.float64]

    def ellipse(
        self, cx: float, cy: float, ax: float, ay: float, value: float, tissue: Tissue
    ) -> None:
        if ax <= 0 or ay <= 0:
            return
        cols = np.flatnonzero(np.abs(self.x - cx) <= ax)
        rows = np.flatnonzero(np.abs(self.y - cy) <= ay)
        if not cols.size or not rows.size:
            return
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        u = ((self.x[box[1]] - cx) / ax) ** 2
        v = ((self.y[box[0]] - cy) / ay) ** 2
        mask = v[:, np.newaxis] + u[np.newaxis, :] <= 1.0
        self.hu[box][mask] = value
        self.labels[box][mask] = int(tissue)

    def table(self, top: float, half_width: float) -> None:
        """A cradle-shaped plate behind the patient, 6 mm thick; background, not patient."""
        depth = self.y[:, np.newaxis] - (top - 0.0008 * self.x[np.newaxis, :] ** 2)
        mask = (depth >= 0) & (depth <= 6.0) & (np.abs(self.x)[np.newaxis, :] < half_width)
        self.hu[mask] = HU_TABLE
        self.labels[mask] = int(Tissue.BACKGROUND)


def _paint_slice(canvas: _Canvas, t: float, fov_x: float, fov_y: float) -> None:
    thorax = t > 0.7  # lungs and ribs in the upper part; abdomen below
    scale = min(1.0, 0.9 * fov_x / 340.0, 0.8 * fov_y / 250.0)  # shrink to fit small grids
    ax = (165.0 + 10.0 * math.sin(math.pi * t)) * scale
    ay = (115.0 + 5.0 * math.sin(math.pi * t)) * scale
    cy = -0.04 * fov_y
    skin, fat, wall = 2.5 * scale, 20.0 * scale, 14.0 * scale
    paint = canvas.ellipse

    canvas.table(cy + ay + 8.0 * scale, 0.45 * fov_x)
    paint(0, cy, ax, ay, HU_SKIN, Tissue.SKIN)
    paint(0, cy, ax - skin, ay - skin, HU_FAT, Tissue.SF)
    inner_x, inner_y = ax - skin - fat, ay - skin - fat
    paint(0, cy, inner_x, inner_y, HU_MUSCLE, Tissue.MUSCLE)
    cav_x, cav_y = inner_x - wall, inner_y - wall
    cavity_fat = Tissue.SF if thorax else Tissue.AVF  # intrathoracic fat counts as SF
    paint(0, cy, cav_x, cav_y, HU_FAT, cavity_fat)

    # Spine at the back of the cavity: vertebral body, canal with cord, posterior arch.
    body_r = 17.0 * scale
    vy = cy + cav_y - 1.6 * body_r
    canal_y = vy + body_r + 9.0 * scale
    if thorax:
        for side in (-1.0, 1.0):
            lung_x = side * 0.5 * cav_x
            paint(lung_x, cy - 0.05 * cav_y, 0.42 * cav_x, 0.8 * cav_y, HU_LUNG, Tissue.BACKGROUND)
        paint(-0.1 * cav_x, cy - 0.35 * cav_y, 0.12 * cav_x, 0.1 * cav_y, HU_AORTA, Tissue.IO)
    else:
        if t > 0.4:  # liver on the patient's right (-x)
            paint(-0.45 * cav_x, cy - 0.1 * cav_y, 0.5 * cav_x, 0.6 * cav_y, HU_LIVER, Tissue.IO)
        if 0.25 < t < 0.6:
            for side in (-1.0, 1.0):
                kidney_x = side * 0.38 * cav_x
                paint(kidney_x, vy - 0.05 * cav_y, 0.13 * cav_x, 0.2 * cav_y, HU_KIDNEY, Tissue.IO)
        for bx, by in ((0.15, -0.45), (0.45, -0.1), (-0.05, -0.15), (0.25, 0.25)):
            if t < 0.5 or bx > 0:  # bowel loops, fewer beside the liver
                paint(bx * cav_x, cy + by * cav_y, 0.14 * cav_x, 0.13 * cav_y, HU_BOWEL, Tissue.IO)
        if t < 0.45:
            for side in (-1.0, 1.0):  # psoas beside the vertebral body
                paint(side * 1.9 * body_r, vy, 0.9 * body_r, 1.1 * body_r, HU_MUSCLE, Tissue.MUSCLE)
    # Aorta, left-anterior of the spine.
    paint(1.3 * body_r, vy - 1.3 * body_r, 0.55 * body_r, 0.55 * body_r, HU_AORTA, Tissue.IO)
    for side in (-1.0, 1.0):  # paraspinal muscles behind the transverse processes
        paraspinal_x = side * 1.7 * body_r
        paint(paraspinal_x, canal_y + 0.6 * body_r, 1.2 * body_r, body_r, HU_MUSCLE, Tissue.MUSCLE)
    paint(0, vy, body_r, body_r, HU_CORTICAL, Tissue.BONE)
    marrow_r = body_r - 2.0 * scale
    paint(0, vy, marrow_r, marrow_r, HU_CANCELLOUS, Tissue.BONE)
    arch_r, canal_r = 11.0 * scale, 7.0 * scale
    paint(0, canal_y, arch_r, arch_r, HU_CORTICAL, Tissue.BONE)
    paint(0, canal_y, canal_r, canal_r, HU_CSF, Tissue.CNS)
    paint(0, canal_y, 0.55 * canal_r, 0.55 * canal_r, HU_CORD, Tissue.CNS)
    if t > 0.55:  # ribs in the muscle wall, open at the front
        rib_r = 5.0 * scale
        for angle in np.linspace(0.25 * math.pi, 1.75 * math.pi, 10):
            rx = (inner_x - wall / 2) * math.sin(angle)
            ry = cy - (inner_y - wall / 2) * math.cos(angle)
            paint(rx, ry, rib_r, rib_r, HU_RIB, Tissue.BONE)


# --- a trunk with a skeleton: the study of the demo ---------------------------------------
#
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
    levels = {"L3": (-LUMBAR_BODY_MM / 2, LUMBAR_BODY_MM / 2)}
    top = LUMBAR_BODY_MM / 2
    for name in ("L2", "L1"):
        bottom = top + LUMBAR_DISC_MM
        levels[name] = (bottom, bottom + LUMBAR_BODY_MM)
        top = bottom + LUMBAR_BODY_MM
    for n in range(12, 0, -1):
        bottom = top + (LUMBAR_DISC_MM if n == 12 else THORACIC_DISC_MM)
        levels[f"T{n}"] = (bottom, bottom + THORACIC_BODY_MM)
        top = bottom + THORACIC_BODY_MM
    bottom = -LUMBAR_BODY_MM / 2
    for name in ("L4", "L5"):
        top = bottom - LUMBAR_DISC_MM
        levels[name] = (top - LUMBAR_BODY_MM, top)
        bottom = top - LUMBAR_BODY_MM
    top = bottom - LUMBAR_DISC_MM
    levels["S1"] = (top - SACRUM_HEIGHT_MM, top)
    return levels


LEVELS = vertebral_levels()


@dataclass(frozen=True)
class _Layout:
    """The in-plane layout of the trunk at one height, in mm (+x left, +y back)."""

    ax: float  # body semi-axes and centre
    ay: float
    cy: float
    skin: float
    fat: float
    wall: float
    body_r: float  # vertebral body radius
    scale: float

    @property
    def inner_x(self) -> float:
        return self.ax - self.skin - self.fat

    @property
    def inner_y(self) -> float:
        return self.ay - self.skin - self.fat

    @property
    def cav_x(self) -> float:
        return self.inner_x - self.wall

    @property
    def cav_y(self) -> float:
        return self.inner_y - self.wall

    @property
    def vy(self) -> float:  # vertebral body centre
        return self.cy + self.cav_y - 1.6 * self.body_r

    @property
    def canal_y(self) -> float:
        return self.vy + self.body_r + 9.0 * self.scale


def _layout(a: float, fov_x: float, fov_y: float) -> _Layout:
    scale = min(1.0, 0.9 * fov_x / 340.0, 0.8 * fov_y / 250.0)  # shrink to fit small grids
    bulge = math.cos(math.pi * min(abs(a), 240.0) / 480.0)  # widest at L3
    return _Layout(
        ax=(165.0 + 10.0 * bulge) * scale,
        ay=(115.0 + 5.0 * bulge) * scale,
        cy=-0.04 * fov_y,
        skin=2.5 * scale,
        fat=17.0 * scale,
        wall=18.0 * scale,
        body_r=17.0 * scale,
        scale=scale,
    )


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


def with_noise(hu: NDArray[np.float32], seed: int) -> NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    noisy = hu + rng.normal(0.0, NOISE_HU, size=hu.shape).astype(np.float32)
    return np.clip(np.rint(noisy), -1024, 3071).astype(np.int16)


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
    x = np.asarray((np.arange(ni) - (ni - 1) / 2.0) * dx, dtype=np.float64)
    y = np.asarray((np.arange(nj) - (nj - 1) / 2.0) * dy, dtype=np.float64)
    fov_x, fov_y = ni * dx, nj * dy
    hu = np.full(shape, HU_AIR, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    ribs = _rib_paths(fov_x, fov_y)
    for k in range(nk):
        a = z_start + k * dz - l3_z
        canvas = _Canvas(hu[k], labels[k], x, y)
        layout = _layout(a, fov_x, fov_y)
        _paint_trunk_slice(canvas, a, layout, fov_x)
        for path in ribs:
            _paint_tube(canvas, path, a, RIB_RADIUS_MM * layout.scale, HU_RIB)
        _paint_pelvis(canvas, a, layout)
    return hu, labels


def _level_at(a: float) -> str | None:
    """The vertebral body at height ``a``, or None in a disc (or beyond the spine)."""
    return next((name for name, (lo, hi) in LEVELS.items() if lo <= a < hi), None)


def _paint_trunk_slice(canvas: _Canvas, a: float, body: _Layout, fov_x: float) -> None:
    paint = canvas.ellipse
    s, cy, r = body.scale, body.cy, body.body_r
    cav_x, cav_y, vy = body.cav_x, body.cav_y, body.vy
    canvas.table(cy + body.ay + 8.0 * s, 0.45 * fov_x)
    paint(0, cy, body.ax, body.ay, HU_SKIN, Tissue.SKIN)
    paint(0, cy, body.ax - body.skin, body.ay - body.skin, HU_FAT, Tissue.SF)
    paint(0, cy, body.inner_x, body.inner_y, HU_MUSCLE, Tissue.MUSCLE)
    thorax = a > DIAPHRAGM_MM
    paint(0, cy, cav_x, cav_y, HU_FAT, Tissue.SF if thorax else Tissue.AVF)

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
    if a > 0.0:  # the liver, on the patient's right (-x), its tip at L3
        f = min(1.0, 0.4 + a / 100.0)
        paint(
            -0.45 * cav_x, cy - 0.1 * cav_y, 0.5 * f * cav_x, 0.6 * f * cav_y, HU_LIVER, Tissue.IO
        )
    if 60.0 < a < 150.0:  # spleen, left and back
        paint(0.55 * cav_x, cy + 0.25 * cav_y, 0.18 * cav_x, 0.3 * cav_y, HU_LIVER, Tissue.IO)
    if -35.0 < a < 80.0:
        for side in (-1.0, 1.0):
            paint(
                side * 0.38 * cav_x,
                vy - 0.05 * cav_y,
                0.13 * cav_x,
                0.2 * cav_y,
                HU_KIDNEY,
                Tissue.IO,
            )
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
        paint(1.3 * r, vy - 1.3 * r, 0.55 * r, 0.55 * r, HU_AORTA, Tissue.IO)
    else:
        apart = 1.3 * r + 0.5 * (ILIAC_CREST_MM - a) * s
        for side in (-1.0, 1.0):
            paint(side * apart, vy - 1.3 * r, 0.4 * r, 0.4 * r, HU_AORTA, Tissue.IO)
    for side in (-1.0, 1.0):  # paraspinal muscles behind the transverse processes
        paint(side * 1.7 * r, body.canal_y + 0.6 * r, 1.2 * r, r, HU_MUSCLE, Tissue.MUSCLE)
    _paint_spine(canvas, a, body)


def _paint_spine(canvas: _Canvas, a: float, body: _Layout) -> None:
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
        paint(0, vy, r, r, HU_CORTICAL, Tissue.BONE)
        paint(0, vy, r - 2.0 * s, r - 2.0 * s, HU_CANCELLOUS, Tissue.BONE)
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
    arch_r, canal_r = 11.0 * s, 7.0 * s
    paint(0, canal_y + 14.0 * s, 4.0 * s, 12.0 * s, HU_CORTICAL, Tissue.BONE)  # spinous
    paint(0, canal_y, arch_r, arch_r, HU_CORTICAL, Tissue.BONE)
    if a > sacrum_lo + 30.0:
        paint(0, canal_y, canal_r, canal_r, HU_CSF, Tissue.CNS)
        paint(0, canal_y, 0.55 * canal_r, 0.55 * canal_r, HU_CORD, Tissue.CNS)


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
    canvas: _Canvas, path: NDArray[np.float64], a: float, radius: float, value: float
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


def _paint_pelvis(canvas: _Canvas, a: float, body: _Layout) -> None:
    """Iliac wings: a 9 mm plate from the sacroiliac joint forward and out to the crest,
    whose top edge falls ``ILIAC_DROP_MM`` from the crest to the joint; below them the
    acetabula and femoral heads."""
    if a > ILIAC_CREST_MM or a < ACETABULUM_MM[0]:
        return
    s, vy = body.scale, body.vy
    p0 = np.array([60.0 * s, vy + 5.0 * s])
    p1 = np.array([122.0 * s, vy - 60.0 * s])
    d = p1 - p0
    length = float(np.hypot(*d))
    cols = np.flatnonzero(np.abs(canvas.x) <= p1[0] + 6.0 * s)
    rows = np.flatnonzero((canvas.y >= p1[1] - 6.0 * s) & (canvas.y <= p0[1] + 6.0 * s))
    if not cols.size or not rows.size:
        return
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    xx = np.abs(canvas.x[box[1]])[np.newaxis, :]
    yy = canvas.y[box[0]][:, np.newaxis]
    t = ((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / length**2
    dist = np.abs((xx - p0[0]) * d[1] - (yy - p0[1]) * d[0]) / length
    wing = (t >= 0.0) & (t <= 1.0) & (dist <= 4.5 * s)
    wing &= a <= ILIAC_CREST_MM - ILIAC_DROP_MM * (1.0 - t)
    if a < ILIAC_BOTTOM_MM:
        wing[:] = False
    canvas.hu[box][wing] = HU_RIB
    canvas.labels[box][wing] = int(Tissue.BONE)
    if ACETABULUM_MM[0] <= a <= ACETABULUM_MM[1]:
        for side in (-1.0, 1.0):
            canvas.ellipse(side * 85.0 * s, vy - 45.0 * s, 18.0 * s, 18.0 * s, HU_RIB, Tissue.BONE)
            canvas.ellipse(side * 110.0 * s, vy - 45.0 * s, 14.0 * s, 14.0 * s, HU_RIB, Tissue.BONE)
