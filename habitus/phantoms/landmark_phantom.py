"""A label map whose landmarks are known: the landmark, metric and preview tests measure on it.

Built in canonical orientation (z foot to head, y anterior to posterior, x right to left) on
a regular grid, then written into a (k, j, i) volume whose slices run head-ward or
foot-ward. Every structure sits at a position fixed here, so tests know the truth:

- a circular trunk (radius 140 mm): skin, subcutaneous fat (110-137 mm), a muscle annulus
  (95-110 mm), visceral fat (75-95 mm), organs inside, an aorta in front of the spine;
- the spine: vertebral bodies (T1..L5) separated by discs, canal (CNS), spinous processes,
  lumbar transverse processes; a sacrum whose top carries wide alae;
- 12 pairs of ribs, each running from its vertebra outward then around the body wall while
  descending; ribs 11 and 12 are short;

Variants for the vertebral naming (``build_phantom`` parameters): 4, 5 or 6 lumbar vertebrae
(named L1..Ln from the top; the sacrum and pelvis stay where they are and everything above
moves), 11, 12 or 13 rib pairs (the ribs sit on T1.., then L1 for a 13th), an 11th rib that
reaches lower than the 12th, rib tips that taper to a thin point, an L5 with wide transverse
processes at the level of its body that make it look like the sacrum (a sacralised L5, as a
3 mm scan may show it), and any slice interval.
- iliac wings whose crest is highest laterally, a thick acetabular region, ischia, femurs;
- two legs below the perineum; optionally arms beside the trunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from habitus.labels import Tissue
from habitus.phantoms.bone_plan import plate, stack_vertebrae
from habitus.volume import CTVolume, Geometry

PIXEL_MM = 3.0
SLICE_MM = 3.0
BODY_R = 140.0
SF_INNER_R = 110.0
MUSCLE_INNER_R = 95.0
AVF_INNER_R = 75.0
SKIN_MM = 3.0
SPINE_Y = 30.0  # vertebral body centre, posterior of the trunk centre
BODY_RX, BODY_RY = 20.0, 15.0
RIB_RADIUS = 5.0
RIB_TIP_RADIUS = 1.2  # a tapered rib's tip: thinner than a 3 mm voxel
RIB_TAPER_MM = 50.0  # length over which a tapered rib thins to its tip
RIB_ARC_R = 88.0
RIB_SLOPE = 0.35  # z drop per mm along a rib
AORTA_X, AORTA_Y, AORTA_R = -15.0, 0.0, 12.0
HU = {
    Tissue.BACKGROUND: -1000,
    Tissue.SKIN: 20,
    Tissue.BONE: 450,
    Tissue.MUSCLE: 45,
    Tissue.AVF: -100,
    Tissue.SF: -105,
    Tissue.IO: 40,
    Tissue.CNS: 30,
}

# Vertebral bodies bottom-up: (name, height mm, disc above mm)
LUMBAR_HEIGHT, LUMBAR_DISC, L1_DISC = 27.0, 9.0, 6.0
THORACIC = [(f"T{n}", 20.0, 5.0) for n in range(12, 0, -1)]
SACRUM_BOTTOM = 110.0
S1_TOP = 210.0
LUMBOSACRAL_DISC = 9.0
CREST_Z = 265.0  # highest point of the iliac wings
ISCHIUM_BOTTOM = 80.0
LEG_SPLIT_Z = 60.0  # the body is two legs below this


@dataclass
class Phantom:
    labels: NDArray[np.uint8]  # canonical (z, y, x)
    z_mm: NDArray[np.float64]  # z of each canonical slice
    vertebrae: dict[str, tuple[float, float]]  # name -> (bottom z, top z) of the body
    truth: dict[str, float] = field(default_factory=dict)  # landmark name -> z mm
    slice_mm: float = SLICE_MM

    def crop(self, z_lo: float, z_hi: float) -> Phantom:
        keep = (self.z_mm >= z_lo) & (self.z_mm <= z_hi)
        return Phantom(
            self.labels[keep], self.z_mm[keep], self.vertebrae, self.truth, self.slice_mm
        )

    def volume(
        self, head_ward: bool = True, hu: NDArray[np.int16] | None = None
    ) -> tuple[NDArray[np.uint8], CTVolume]:
        """(labels, CT) as an input volume: k runs head-ward or foot-ward, j posterior,
        i to the patient's left."""
        labels = self.labels if head_ward else self.labels[::-1]
        ct = self.hu() if hu is None else hu
        ct = ct if head_ward else ct[::-1]
        first = 0 if head_ward else len(self.z_mm) - 1
        n_y, n_x = self.labels.shape[1:]
        origin = (-(n_x - 1) / 2 * PIXEL_MM, -(n_y - 1) / 2 * PIXEL_MM, float(self.z_mm[first]))
        direction = (
            (0.0, 0.0, 1.0),
            (0.0, 1.0, 0.0),
            (1.0 if head_ward else -1.0, 0.0, 0.0),
        )
        geometry = Geometry(
            spacing=(self.slice_mm, PIXEL_MM, PIXEL_MM), origin=origin, direction=direction
        )
        volume = CTVolume(
            hu=np.ascontiguousarray(ct), geometry=geometry, slice_thickness_mm=self.slice_mm
        )
        return np.ascontiguousarray(labels), volume

    def hu(self) -> NDArray[np.int16]:
        lut = np.zeros(256, dtype=np.int16)
        for tissue, value in HU.items():
            lut[int(tissue)] = value
        return lut[self.labels]

    def grid_mm(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(y, x) in mm of every in-plane pixel centre, trunk centre at 0."""
        return _grid(self.labels.shape[1])

    def aorta(self) -> NDArray[np.bool_]:
        """In-plane mask of the aorta (where the trunk has it)."""
        yy, xx = self.grid_mm()
        return np.asarray(np.hypot(xx - AORTA_X, yy - AORTA_Y) <= AORTA_R)

    def k_of_z(self, z: float, head_ward: bool = True) -> int:
        c = int(np.argmin(np.abs(self.z_mm - z)))
        return c if head_ward else len(self.z_mm) - 1 - c


def build_phantom(
    z_top: float = 740.0,
    width_px: int = 104,
    arms: str = "none",
    ribs: bool = True,
    lumbar: int = 5,
    rib_pairs: int = 12,
    low_11th_rib: bool = False,
    tapered_ribs: bool = False,
    wide_l5: bool = False,
    slice_mm: float = SLICE_MM,
) -> Phantom:
    """The whole phantom from the feet (z 0) up to ``z_top``.

    ``arms``: "none", "apart" (beside the trunk, 6 mm away) or "touching". ``lumbar``: number
    of lumbar vertebrae (4 to 6). ``rib_pairs``: 11 to 13. ``low_11th_rib``: the 11th rib is
    long enough for its tip to lie below the 12th's. ``tapered_ribs``: rib tips thin to
    ``RIB_TIP_RADIUS``. ``wide_l5``: the lowest lumbar body spreads as wide as the sacral
    alae over most of its height. ``slice_mm``: the slice interval.
    """
    z = np.arange(0.0, z_top + 1e-6, slice_mm)
    half = (width_px - 1) / 2.0
    yy, xx = np.meshgrid(
        (np.arange(width_px) - half) * PIXEL_MM,
        (np.arange(width_px) - half) * PIXEL_MM,
        indexing="ij",
    )
    labels = np.zeros((z.size, width_px, width_px), dtype=np.uint8)
    vertebrae = _vertebral_levels(lumbar)
    t1_top = vertebrae["T1"][1]
    neck_from = t1_top + 20.0
    r = np.hypot(xx, yy)
    for c, zc in enumerate(z):
        if zc < LEG_SPLIT_Z:
            for side in (-1, 1):
                _paint_limb(labels[c], np.hypot(xx - side * 75.0, yy), 70.0)
        elif zc < neck_from:
            _paint_trunk(labels[c], r, xx, yy)
        else:
            _paint_limb(labels[c], r, 60.0)
    phantom = Phantom(labels=labels, z_mm=z, vertebrae=vertebrae, slice_mm=slice_mm)
    _paint_spine(phantom, xx, yy, wide_l5)
    _paint_pelvis(phantom, xx, yy)
    if ribs:
        _paint_ribs(phantom, xx, yy, rib_pairs, low_11th_rib, tapered_ribs)
    if arms != "none":
        _paint_arms(phantom, xx, yy, gap=6.0 if arms == "apart" else -3.0, z_to=neck_from)
    return phantom


def _grid(width_px: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    half = (width_px - 1) / 2.0
    axis = (np.arange(width_px) - half) * PIXEL_MM
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    return yy, xx


def _vertebral_levels(lumbar: int = 5) -> dict[str, tuple[float, float]]:
    sacrum = ("S1", S1_TOP - SACRUM_BOTTOM, LUMBOSACRAL_DISC)
    lumbars = [
        (f"L{n}", LUMBAR_HEIGHT, L1_DISC if n == 1 else LUMBAR_DISC) for n in range(lumbar, 0, -1)
    ]
    return stack_vertebrae(SACRUM_BOTTOM, [sacrum, *lumbars, *THORACIC])


def _paint_trunk(
    s: NDArray[np.uint8], r: NDArray[np.float64], xx: NDArray[np.float64], yy: NDArray[np.float64]
) -> None:
    s[r <= BODY_R] = Tissue.SKIN
    s[r <= BODY_R - SKIN_MM] = Tissue.SF
    s[r <= SF_INNER_R] = Tissue.MUSCLE
    s[r <= MUSCLE_INNER_R] = Tissue.AVF
    s[r <= AVF_INNER_R] = Tissue.IO
    s[np.hypot(xx - AORTA_X, yy - AORTA_Y) <= AORTA_R] = Tissue.IO  # in front of the spine


def _paint_limb(s: NDArray[np.uint8], r: NDArray[np.float64], radius: float) -> None:
    s[r <= radius] = Tissue.SKIN
    s[r <= radius - SKIN_MM] = Tissue.SF
    s[r <= radius - 20.0] = Tissue.MUSCLE


def _slices(phantom: Phantom, lo: float, hi: float) -> NDArray[np.int64]:
    return np.flatnonzero((phantom.z_mm >= lo) & (phantom.z_mm < hi))


def _paint_spine(
    phantom: Phantom, xx: NDArray[np.float64], yy: NDArray[np.float64], wide_l5: bool = False
) -> None:
    labels = phantom.labels
    body = ((xx / BODY_RX) ** 2 + ((yy - SPINE_Y) / BODY_RY) ** 2) <= 1.0
    canal = ((xx / 8.0) ** 2 + ((yy - (SPINE_Y + BODY_RY + 8.0)) / 7.0) ** 2) <= 1.0
    arch = (
        (np.abs(xx) <= 14.0) & (yy >= SPINE_Y + BODY_RY) & (yy <= SPINE_Y + BODY_RY + 18.0) & ~canal
    )
    spinous = (np.abs(xx) <= 5.0) & (yy > SPINE_Y + BODY_RY + 18.0) & (yy <= 88.0)
    transverse = (np.abs(xx) >= 14.0) & (np.abs(xx) <= 45.0) & (np.abs(yy - 52.0) <= 5.0)
    top = max(hi for _, hi in phantom.vertebrae.values())
    for c in _slices(phantom, SACRUM_BOTTOM, top + 40.0):
        if phantom.z_mm[c] < LEG_SPLIT_Z:
            continue
        inside = labels[c] > 0
        labels[c][(arch | spinous) & inside] = Tissue.BONE
        labels[c][canal & inside] = Tissue.CNS
    for name, (lo, hi) in phantom.vertebrae.items():
        for c in _slices(phantom, lo, hi):
            labels[c][body] = Tissue.BONE
            if name.startswith("L") and abs(phantom.z_mm[c] - (lo + hi) / 2) <= 5.0:
                labels[c][transverse] = Tissue.BONE
    # sacral alae: wide bone at the level of the body, out to the sacroiliac joints
    alae = (np.abs(xx) <= 55.0) & (yy >= SPINE_Y - 10.0) & (yy <= SPINE_Y + 15.0)
    for c in _slices(phantom, S1_TOP - 60.0, S1_TOP):
        labels[c][alae] = Tissue.BONE
    if wide_l5:
        lowest = min(
            (n for n in phantom.vertebrae if n.startswith("L")), key=lambda n: phantom.vertebrae[n]
        )
        lo, hi = phantom.vertebrae[lowest]
        margin = 0.15 * (hi - lo)
        for c in _slices(phantom, lo + margin, hi - margin):
            labels[c][alae] = Tissue.BONE


def _paint_pelvis(phantom: Phantom, xx: NDArray[np.float64], yy: NDArray[np.float64]) -> None:
    labels = phantom.labels
    for side in (-1.0, 1.0):
        # iliac wing: a 9 mm plate from the sacroiliac joint (58, 35) out to (85, -25); its top
        # edge falls from the crest (laterally) to 35 mm lower at the joint
        p0, p1 = np.array([58.0, 35.0]), np.array([85.0, -25.0])
        t, wing = plate(side * xx, yy, p0, p1, 4.5)
        for c in _slices(phantom, 150.0, CREST_Z + 1e-6):
            top_edge = CREST_Z - 35.0 * (1.0 - t)
            labels[c][wing & (phantom.z_mm[c] <= top_edge)] = Tissue.BONE
        acetabulum = np.hypot(side * xx - 62.0, yy) <= 16.0
        for c in _slices(phantom, 120.0, 170.0):
            labels[c][acetabulum] = Tissue.BONE
        ischium = np.hypot(side * xx - 50.0, yy - 35.0) <= 10.0
        for c in _slices(phantom, ISCHIUM_BOTTOM, 125.0):
            labels[c][ischium] = Tissue.BONE
        femoral_head = np.hypot(side * xx - 95.0, yy) <= 12.0
        for c in _slices(phantom, 133.0, 157.0):
            labels[c][femoral_head] = Tissue.BONE
        shaft = np.hypot(side * xx - 100.0, yy) <= 10.0
        for c in _slices(phantom, 0.0, 140.0):
            labels[c][shaft & (labels[c] > 0)] = Tissue.BONE
    phantom.truth["iliac_crest"] = float(phantom.z_mm[_slices(phantom, 0, CREST_Z + 1e-6)[-1]])
    phantom.truth["ischium_bottom"] = float(phantom.z_mm[_slices(phantom, ISCHIUM_BOTTOM, 1e9)[0]])


def _rib_path(head_z: float, length: float) -> NDArray[np.float64]:
    """Points (x, y, z) every 1 mm along a right-side rib (mirror x for the left)."""
    head, angle_point = np.array([22.0, 35.0]), np.array([60.0, 64.0])
    points: list[tuple[float, float]] = []
    first = float(np.hypot(*(angle_point - head)))
    for s in np.arange(0.0, first, 1.0):
        points.append(tuple(head + (angle_point - head) * s / first))
    phi = np.arctan2(angle_point[1], angle_point[0])
    while len(points) < length:
        phi -= 1.0 / RIB_ARC_R
        points.append((RIB_ARC_R * np.cos(phi), RIB_ARC_R * np.sin(phi)))
    xy = np.array(points[: int(length)])
    z = head_z - RIB_SLOPE * np.arange(len(xy))
    return np.column_stack([xy, z])


def _paint_ribs(
    phantom: Phantom,
    xx: NDArray[np.float64],
    yy: NDArray[np.float64],
    pairs: int = 12,
    low_11th: bool = False,
    tapered: bool = False,
) -> None:
    labels = phantom.labels
    x_axis, y_axis = xx[0], yy[:, 0]
    rib = np.zeros(labels.shape, dtype=bool)
    lowest: tuple[float, int] | None = None
    for n in range(1, pairs + 1):
        lo, hi = phantom.vertebrae[f"T{n}" if n <= 12 else f"L{n - 12}"]
        # the last two pairs are the short floating ribs; a long 11th reaches below the 12th
        length = 210.0
        if n == pairs:
            length = 120.0
        elif n == pairs - 1:
            length = 250.0 if low_11th else 180.0
        path = _rib_path((lo + hi) / 2 + 5.0, length)
        radius = np.full(len(path), RIB_RADIUS)
        if tapered:
            to_tip = len(path) - 1 - np.arange(len(path))
            radius = RIB_TIP_RADIUS + (RIB_RADIUS - RIB_TIP_RADIUS) * np.clip(
                to_tip / RIB_TAPER_MM, 0.0, 1.0
            )
        for side in (-1.0, 1.0):
            points = path * np.array([side, 1.0, 1.0])
            tree = cKDTree(points)
            zs = np.flatnonzero(
                (phantom.z_mm >= points[:, 2].min() - RIB_RADIUS)
                & (phantom.z_mm <= points[:, 2].max() + RIB_RADIUS)
            )
            rows = np.flatnonzero(
                (y_axis >= points[:, 1].min() - RIB_RADIUS)
                & (y_axis <= points[:, 1].max() + RIB_RADIUS)
            )
            cols = np.flatnonzero(
                (x_axis >= points[:, 0].min() - RIB_RADIUS)
                & (x_axis <= points[:, 0].max() + RIB_RADIUS)
            )
            if zs.size == 0:
                continue
            gz, gy, gx = np.meshgrid(phantom.z_mm[zs], y_axis[rows], x_axis[cols], indexing="ij")
            distance, nearest = tree.query(
                np.column_stack([gx.ravel(), gy.ravel(), gz.ravel()]),
                distance_upper_bound=RIB_RADIUS + 1.0,
            )
            found = np.isfinite(distance)
            inside = np.zeros(distance.shape, dtype=bool)
            inside[found] = distance[found] <= radius[nearest[found]]
            inside = inside.reshape(gz.shape)
            rib[np.ix_(zs, rows, cols)] |= inside
            if inside.any():
                bottom = float(phantom.z_mm[zs[np.flatnonzero(inside.any(axis=(1, 2)))[0]]])
                if lowest is None or bottom < lowest[0]:
                    lowest = (bottom, n)
    labels[rib] = Tissue.BONE
    rib_slices = np.flatnonzero(rib.any(axis=(1, 2)))
    phantom.truth["last_rib"] = float(phantom.z_mm[rib_slices[0]])
    if lowest is not None:
        phantom.truth["lowest_rib_number"] = float(lowest[1])
    phantom.truth["rib_top"] = float(phantom.z_mm[rib_slices[-1]])


def _paint_arms(
    phantom: Phantom, xx: NDArray[np.float64], yy: NDArray[np.float64], gap: float, z_to: float
) -> None:
    for side in (-1.0, 1.0):
        centre = side * (BODY_R + gap + 40.0)
        r = np.hypot(xx - centre, yy)
        humerus = r <= 12.0
        for c in _slices(phantom, LEG_SPLIT_Z + 60.0, z_to):
            s = phantom.labels[c]
            arm = r <= 40.0
            s[arm] = Tissue.SKIN
            s[r <= 37.0] = Tissue.SF
            s[r <= 25.0] = Tissue.MUSCLE
            s[humerus] = Tissue.BONE
