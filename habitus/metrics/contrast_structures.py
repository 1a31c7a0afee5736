"""Where to read the contrast phase: the aorta's lumen and the liver, found from anatomy and HU.

Neither search trusts the segmenter's class of the structure itself: an aorta full of
arterial contrast is as bright as bone and may be labelled so. The aorta is sought as a
round, homogeneous lumen of 15 to 35 mm beside and in front of the vertebral body (preferably
left of its midline), with no cortex around it, on the spine track the anatomy found; the
liver as the largest solid soft-tissue organ on the right of the spine above the pelvis. Both
are measured by the median HU of their interior, away from the walls where partial volume
mixes in fat. docs/metrics.md gives the numbers.

Canonical slices are (y, x): rows anterior to posterior, columns right to left (the patient's
left is +x).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from habitus.anatomy import Anatomy
from habitus.labels import Tissue
from habitus.volume import CTVolume

AORTA_RADIUS_MM = (7.5, 17.5)  # lumen 15 to 35 mm across
# The lumen's centre relative to the vertebral body's front edge (rows, + posterior) and
# midline (columns, + to the patient's left): beside the body in the chest, in front of it
# in the abdomen; left of the midline in all but mirror-image anatomy, which the search allows.
AORTA_ROWS_MM = (-40.0, 20.0)
AORTA_COLS_MM = (-25.0, 40.0)
AORTA_PRIOR_MM = (-5.0, 15.0)  # the usual centre, to choose between candidates
AORTA_PRIOR_WEIGHT = 0.15  # mm of radius given up per mm from the usual centre
LUMEN_MIN_HU = 0.0  # blood is never fat
LUMEN_MAX_HU = 700.0
CORTEX_HU = 550.0  # cortical bone; enhanced blood stays below it
CORTEX_RAYS = 16
CORTEX_MARGIN_MM = 4.0
MAX_CORTEX_SHARE = 0.5  # above this: cortical bone or metal
HOMOGENEITY_WINDOW_MM = 4.0  # local standard deviation over this window
HOMOGENEITY_NOISE_FACTOR = 2.5  # a lumen's local spread stays within this many noise sigmas
MIN_HOMOGENEITY_HU = 12.0
AORTA_MAX_SLICES = 40
AORTA_MIN_SLICES = 3
# The aorta runs from T4 to L4: a vessel in fewer of the spine's slices is something else.
AORTA_MIN_SLICE_FRACTION = 0.15
AORTA_TRACK_MM = 15.0  # slices whose lumen strays further from the track's median are dropped
INNER_FRACTION = 0.6  # the median is read inside this share of the lumen's radius
MAX_CANDIDATES = 6  # lumens tried per slice, best placed first
# Behind the front edge, a "lumen" centred on the midline (closer than this share of its
# radius) is the vertebral body: the aorta lies to one side of it.
MIDLINE_SHARE = 0.5
RING_MM = (3.0, 8.0)  # the ring around a lumen, beyond its radius
RING_NOISE_FACTOR = 3.0
RING_MIN_HU = 30.0  # ring pixels further than this from the lumen's HU are something else
RING_MIN_DIFFERENT = 0.6

LIVER_HU = (-10.0, 250.0)
LIVER_EROSION_MM = 6.0
LIVER_MIN_CM3 = 60.0
LIVER_MIN_SLICE_CM2 = 30.0
LIVER_MIN_RIGHT_MM = 30.0  # its centre lies this far right of the spine's midline at least


@dataclass(frozen=True)
class Lumen:
    row: int  # canonical pixel of its centre
    col: int
    dy_mm: float  # from the vertebral body's front edge, + posterior
    dx_mm: float  # from the spine's midline, + to the patient's left
    radius_mm: float
    median_hu: float  # of its centre
    pixels: int


@dataclass(frozen=True)
class Found:
    """A structure's attenuation where it was found (canonical slices), or why it was not."""

    median_hu: float | None
    slices: list[int]  # canonical slices measured
    pixels: int
    detail: str  # how it was measured, or why it was not found
    radius_mm: float | None = None  # aorta: median radius of the lumen
    lumens: dict[int, Lumen] = field(default_factory=dict)  # aorta: by canonical slice

    @property
    def found(self) -> bool:
        return self.median_hu is not None


def find_aorta(labels: NDArray[np.uint8], volume: CTVolume, anatomy: Anatomy) -> Found:
    """The descending aorta's lumen along the spine track, measured slice by slice."""
    frame, spine = anatomy.frame, anatomy.spine
    candidates = np.flatnonzero(spine.valid)
    if candidates.size == 0:
        return Found(None, [], 0, "no spine found to look beside")
    if candidates.size > AORTA_MAX_SLICES:
        picks = np.linspace(0, candidates.size - 1, AORTA_MAX_SLICES).round().astype(int)
        candidates = candidates[picks]
    hu = frame.canonical(volume.hu)
    lab = frame.canonical(labels)
    noise = _noise_hu(hu, lab, candidates)
    lumens: dict[int, Lumen] = {}
    for c in candidates:
        lumen = _lumen_in_slice(hu[c], lab[c], anatomy, int(c), noise)
        if lumen is not None:
            lumens[int(c)] = lumen
    if len(lumens) < max(AORTA_MIN_SLICES, AORTA_MIN_SLICE_FRACTION * candidates.size):
        return Found(
            None,
            [],
            0,
            f"no round lumen of {2 * AORTA_RADIUS_MM[0]:g}-{2 * AORTA_RADIUS_MM[1]:g} mm beside "
            f"the vertebral bodies in enough of the {candidates.size} slices along the spine "
            f"(found in {len(lumens)})",
        )
    # One aorta runs along the spine: lumens away from the track's median are something else.
    dy = np.median([m.dy_mm for m in lumens.values()])
    dx = np.median([m.dx_mm for m in lumens.values()])
    kept = {
        c: m for c, m in lumens.items() if np.hypot(m.dy_mm - dy, m.dx_mm - dx) <= AORTA_TRACK_MM
    }
    if len(kept) < AORTA_MIN_SLICES:
        return Found(None, [], 0, "the lumens found beside the spine do not form one vessel")
    return Found(
        median_hu=round(float(np.median([m.median_hu for m in kept.values()])), 1),
        slices=sorted(kept),
        pixels=sum(m.pixels for m in kept.values()),
        detail=f"median of the lumen centres ({INNER_FRACTION:.0%} of the radius) in "
        f"{len(kept)} of {candidates.size} slices along the spine",
        radius_mm=round(float(np.median([m.radius_mm for m in kept.values()])), 1),
        lumens=kept,
    )


def _noise_hu(hu: NDArray[np.integer], lab: NDArray[np.uint8], slices: NDArray[np.int64]) -> float:
    """Image noise: the median local spread of HU over soft tissue (muscle and organs)."""
    picks = slices[:: max(1, slices.size // 8)]
    spreads = []
    for c in picks:
        h = hu[c].astype(np.float64)
        soft = np.isin(lab[c], (Tissue.MUSCLE, Tissue.IO)) & (h > -50) & (h < 150)
        if soft.sum() < 50:
            continue
        spreads.append(float(np.median(_local_std(h, 3)[ndi.binary_erosion(soft, iterations=2)])))
    return float(np.median(spreads)) if spreads else MIN_HOMOGENEITY_HU


def _local_std(h: NDArray[np.float64], size: int) -> NDArray[np.float64]:
    mean = ndi.uniform_filter(h, size)
    square = ndi.uniform_filter(h * h, size)
    return np.asarray(np.sqrt(np.maximum(square - mean * mean, 0.0)))


def _lumen_in_slice(
    hu: NDArray[np.integer],
    lab: NDArray[np.uint8],
    anatomy: Anatomy,
    c: int,
    noise: float,
) -> Lumen | None:
    """The best placed round homogeneous lumen beside the vertebral body of slice c."""
    frame, spine = anatomy.frame, anatomy.spine
    (pool_y, pool_x), (mm_y, mm_x) = frame.pool, frame.pixel_mm
    front = spine.front[c] * pool_y
    mid = (spine.x[c] + 0.5) * pool_x
    reach = AORTA_RADIUS_MM[1] + 5.0
    top = max(0, int(front + (AORTA_ROWS_MM[0] - reach) / mm_y))
    bottom = min(hu.shape[0], int(front + (AORTA_ROWS_MM[1] + reach) / mm_y) + 1)
    left = max(0, int(mid + (AORTA_COLS_MM[0] - reach) / mm_x))
    right = min(hu.shape[1], int(mid + (AORTA_COLS_MM[1] + reach) / mm_x) + 1)
    if bottom - top < 3 or right - left < 3:
        return None
    h = hu[top:bottom, left:right].astype(np.float64)
    # Only organs/vessels or bone can hold a lumen (an arterial aorta may be called bone).
    allowed = np.isin(lab[top:bottom, left:right], (Tissue.IO, Tissue.BONE))
    window = max(3, int(round(HOMOGENEITY_WINDOW_MM / min(mm_y, mm_x))) | 1)
    smooth = ndi.uniform_filter(h, window)
    homogeneous = (
        allowed
        & (_local_std(h, window) <= max(MIN_HOMOGENEITY_HU, HOMOGENEITY_NOISE_FACTOR * noise))
        & (smooth > LUMEN_MIN_HU)
        & (smooth < LUMEN_MAX_HU)
    )
    if not homogeneous.any():
        return None
    # The edge band lost to the window's reach is given back to the radius.
    depth = (
        ndi.distance_transform_edt(homogeneous, sampling=(mm_y, mm_x))
        + window * min(mm_y, mm_x) / 2.0
    )
    rr, cc = np.mgrid[top:bottom, left:right]
    dy_mm = (rr - front) * mm_y
    dx_mm = (cc - mid) * mm_x
    inside = (
        (dy_mm >= AORTA_ROWS_MM[0])
        & (dy_mm <= AORTA_ROWS_MM[1])
        & (dx_mm >= AORTA_COLS_MM[0])
        & (dx_mm <= AORTA_COLS_MM[1])
        & (depth >= AORTA_RADIUS_MM[0])
        & (depth <= AORTA_RADIUS_MM[1] + window * min(mm_y, mm_x))
        & homogeneous
    )
    if not inside.any():
        return None
    distance = np.hypot(dy_mm - AORTA_PRIOR_MM[0], dx_mm - AORTA_PRIOR_MM[1])
    score = np.where(inside, depth - AORTA_PRIOR_WEIGHT * distance, -np.inf)
    peak_size = max(3, int(round(2.0 * AORTA_RADIUS_MM[0] / min(mm_y, mm_x))))
    peaks = inside & (score == ndi.maximum_filter(score, size=peak_size))
    order = np.argsort(score[peaks])[::-1][:MAX_CANDIDATES]
    ys, xs = np.nonzero(peaks)
    for y, x in zip(ys[order], xs[order], strict=True):
        radius = float(min(depth[y, x], AORTA_RADIUS_MM[1]))
        if dy_mm[y, x] > 0.0 and abs(dx_mm[y, x]) < MIDLINE_SHARE * radius:
            continue  # centred on the midline behind the front edge: the vertebral body
        distance_mm = np.hypot((rr - rr[y, x]) * mm_y, (cc - cc[y, x]) * mm_x)
        values = h[(distance_mm <= INNER_FRACTION * radius) & allowed]
        if values.size == 0 or _cortex_around(h, y, x, radius, (mm_y, mm_x)) > MAX_CORTEX_SHARE:
            continue
        level = float(np.median(values))
        # A lumen has a wall: around it lies something else (fat, lung, bone, the crus in
        # part). A point inside a larger organ is surrounded by more of the same.
        ring = (distance_mm >= radius + RING_MM[0]) & (distance_mm <= radius + RING_MM[1])
        different = np.abs(smooth[ring] - level) > max(RING_NOISE_FACTOR * noise, RING_MIN_HU)
        if different.mean() >= RING_MIN_DIFFERENT:
            return Lumen(
                int(rr[y, x]),
                int(cc[y, x]),
                float(dy_mm[y, x]),
                float(dx_mm[y, x]),
                radius,
                level,
                values.size,
            )
    return None


def _cortex_around(
    h: NDArray[np.float64], y: int, x: int, radius_mm: float, mm: tuple[float, float]
) -> float:
    """Share of the directions from (y, x) that meet cortical bone within the radius and a
    margin: marrow (a vertebral body) is walled by cortex, a lumen is not, or only in part
    (plaques, the vertebra it lies against)."""
    reach = np.linspace(0.5 * radius_mm, radius_mm + CORTEX_MARGIN_MM, 12)
    angles = np.linspace(0.0, 2.0 * np.pi, CORTEX_RAYS, endpoint=False)
    ys = np.rint(y + np.outer(np.sin(angles), reach) / mm[0]).astype(int)
    xs = np.rint(x + np.outer(np.cos(angles), reach) / mm[1]).astype(int)
    ys = np.clip(ys, 0, h.shape[0] - 1)
    xs = np.clip(xs, 0, h.shape[1] - 1)
    return float((h[ys, xs] > CORTEX_HU).any(axis=1).mean())


def find_liver(labels: NDArray[np.uint8], volume: CTVolume, anatomy: Anatomy) -> Found:
    """The largest solid organ right of the spine, its interior (walls eroded) measured."""
    frame, spine = anatomy.frame, anatomy.spine
    if not spine.valid.any():
        return Found(None, [], 0, "no spine found to tell right from left")
    # Every pool-th pixel (about 3 mm): an organ this large needs no finer grid, and the
    # erosion and labelling of a whole-body scan at full resolution take seconds.
    (py, px), (mm_y, mm_x) = frame.pool, frame.pooled_mm
    hu = frame.canonical(volume.hu)[:, ::py, ::px]
    lab = frame.canonical(labels)[:, ::py, ::px]
    _, mid = spine.filled_centres()  # midline column per slice, on the same pooled grid
    cols = np.arange(hu.shape[2], dtype=np.float64)
    right_of_spine = (cols[np.newaxis, :] - mid[:, np.newaxis]) * mm_x < -10.0
    organ = (
        (lab == Tissue.IO)
        & (hu >= LIVER_HU[0])
        & (hu <= LIVER_HU[1])
        & right_of_spine[:, np.newaxis, :]
    )
    # The liver lies above the pelvis; beside the hip bones the bowel fills the right side.
    pelvis_top = max((b.hi for b in anatomy.skeleton.iliac_bones), default=-1)
    crest = anatomy.landmarks.iliac_crest
    if crest.present and crest.slice_index is not None:
        pelvis_top = max(pelvis_top, frame.k_of(int(round(crest.slice_index))))
    organ[: pelvis_top + 1] = False
    if not organ.any():
        return Found(None, [], 0, "no solid organ right of the spine above the pelvis")
    radius = (
        max(1, int(round(LIVER_EROSION_MM / mm_y))),
        max(1, int(round(LIVER_EROSION_MM / mm_x))),
    )
    disk = _ellipse(radius)
    # In-plane erosion: cuts the bridges to the kidney, the bowel and the vessels.
    core = ndi.binary_erosion(organ, structure=disk[np.newaxis, :, :])
    components, n = ndi.label(core)
    if n == 0:
        return Found(None, [], 0, "no solid organ on the right of the spine")
    sizes = np.bincount(components.ravel())[1:]
    best = int(np.argmax(sizes)) + 1
    liver = components == best
    voxel_cm3 = volume.geometry.spacing[0] * mm_y * mm_x / 1000.0
    cm3 = float(sizes[best - 1] * voxel_cm3)
    slice_cm2 = liver.sum(axis=(1, 2)) * mm_y * mm_x / 100.0
    _, _, xs = np.nonzero(liver)
    zs = np.flatnonzero(liver.any(axis=(1, 2)))
    right_mm = float(np.median((mid[zs].mean() - xs) * mm_x))
    if (
        cm3 < LIVER_MIN_CM3
        or slice_cm2.max() < LIVER_MIN_SLICE_CM2
        or right_mm < LIVER_MIN_RIGHT_MM
    ):
        return Found(
            None,
            [],
            0,
            f"no solid organ on the right large enough for the liver (largest {cm3:.0f} cm3, "
            f"{slice_cm2.max():.0f} cm2 in a slice, {right_mm:.0f} mm right of the midline)",
        )
    values = hu[liver]
    return Found(
        median_hu=round(float(np.median(values)), 1),
        slices=[int(c) for c in zs],
        pixels=int(values.size),
        detail=f"median of the largest solid organ right of the spine ({cm3:.0f} cm3 after "
        f"a {LIVER_EROSION_MM:g} mm erosion)",
    )


def _ellipse(radius: tuple[int, int]) -> NDArray[np.bool_]:
    ry, rx = radius
    y, x = np.ogrid[-ry : ry + 1, -rx : rx + 1]
    return np.asarray((y / ry) ** 2 + (x / rx) ** 2 <= 1.0)
