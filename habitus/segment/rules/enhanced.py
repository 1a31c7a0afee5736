"""Enhanced blood and organs: large, smooth regions denser than soft tissue, never bone.

With intravenous contrast the heart chambers, the aorta and the great veins read 150-600 HU
and the liver, spleen and kidneys 100-200 HU: as dense as cancellous bone or cartilage, and
in the arterial phase above the 250 HU that seeds the skeleton. What tells them apart is
their shape and texture. A pool of blood or an enhanced organ is a thick region whose
attenuation varies no more than the image noise does; bone is a thin cortex (sharp, bright
edges) around a grainy marrow. On thick slices a vertebral body's marrow reads smooth too,
so each slice's piece is judged by what lies round it: blood and organs are bounded by fat,
muscle or a vessel wall, and touch a bone on one side at most; marrow continues into marrow
of about its own density and into its cortex, and is bounded by softer tissue on few sides;
on fine grids, where the band looked at reaches past a thin cortex, a marrow is told by a
cortex nearly all round it, which the patchy plaque of a calcified vessel wall is not.

Pools are found in two tiers: anything above ``DENSE_HU`` (blood in the arterial and
portal-venous phases) at least ``DENSE_RADIUS_MM`` thick, and anything above ``MIN_HU``
(enhanced parenchyma, blood in the delayed phase) at least ``ORGAN_RADIUS_MM`` thick, which
costal cartilage, as dense but a centimetre or so across, is not. Once the body wall is
known, vessels down to ``VESSEL_RADIUS_MM`` (the iliac arteries) are looked for inside it,
where no rib lies. Each pool is then grown back over the rim that the texture window and
partial volume took off it, into voxels no denser than the pool itself: a cortex it touches
is brighter and stays bone.

Shaped on: contrast painted into the two shared real scans (tests/segment/rules/
test_contrast.py) and the phantoms of habitus/phantoms. The bounded share (0.5) on the 3 mm
non-contrast abdomen, whose vertebral marrow reads smooth at about 110 HU (its pieces reach
0.42, its aorta no less than 0.55); the ringed share (0.8) on the 1 mm PET-CT, whose
calcified aorta reaches 0.62, and on the phantoms, whose marrow is smooth inside a full
cortex; ``DENSE_RADIUS_MM`` on the phantoms' smooth ribs (3 mm took them for vessels),
``VESSEL_RADIUS_MM`` on the phantoms' iliac vessels. The smoothness bar follows the noise
measured in each scan, not either scan's levels. Blood above ``MAX_HU`` (undiluted contrast
in an arm vein) is not looked for, and a bone whose cortex does not show reads like a vessel
(the phantoms' femur on a 2 mm grid, smooth 220 HU marrow in muscle, is taken for one).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.segment.rules.morphology import (
    IN_PLANE,
    Mask,
    dilate_2d,
    local_mean_and_spread,
    open_2d,
)

MIN_HU = 70.0  # below the lowest bone thresholds (cartilage 75, cancellous bone 80 HU)
DENSE_HU = 150.0
MAX_HU = 700.0  # cortical bone lies above; blood seldom does
DENSE_RADIUS_MM = 4.0  # a vessel 8 mm across or more; a rib on thick slices is smooth and thinner
ORGAN_RADIUS_MM = 6.0  # thicker than any costal cartilage
VESSEL_RADIUS_MM = 2.5  # inside the cavity: a vessel about 1 cm across (the iliac arteries)
TEXTURE_WINDOW_MM = 5.0
SMOOTH_NOISE_FACTOR = 2.5  # a pool varies about as much as the noise
MIN_SMOOTH_HU = 20.0
STEP_HU = 60.0  # cortex reads this much above a marrow, fat or muscle this much below a pool
SHELL_REACH_MM = 6.0  # how far round a piece its bounds are looked for
N_SECTORS = 24
MAX_MARROW_MM2 = 3000.0  # a larger piece is no marrow cavity
MIN_RINGED_SHARE = 0.8  # of the directions, cortex close to a marrow cavity
MIN_BOUNDED_SHARE = 0.5  # of the directions, softer tissue close to a pool
GROW_MM = 5.0
GROW_MARGIN_NOISE = 3.0
MIN_GROW_MARGIN_HU = 50.0


def enhanced_pools(hu: NDArray[np.int16], body: Mask, spacing: tuple[float, float, float]) -> Mask:
    """Voxels of enhanced blood pools and organs: never bone, whatever bone lies beside."""
    return _pools(hu, body, spacing, ((DENSE_HU, DENSE_RADIUS_MM), (MIN_HU, ORGAN_RADIUS_MM)))


def enhanced_vessels(
    hu: NDArray[np.int16], cavity: Mask, spacing: tuple[float, float, float]
) -> Mask:
    """Enhanced vessels too thin for :func:`enhanced_pools` (the iliac arteries and veins),
    looked for inside the body cavity only: a rib in the wall is as thick and, on thick
    slices, as smooth."""
    return _pools(hu, cavity, spacing, ((DENSE_HU, VESSEL_RADIUS_MM),))


def _pools(
    hu: NDArray[np.int16],
    body: Mask,
    spacing: tuple[float, float, float],
    tiers: tuple[tuple[float, float], ...],
) -> Mask:
    """Smooth pieces above each tier's HU and at least its radius thick, judged by what
    lies round them and grown back over their rim."""
    pixel = (spacing[1], spacing[2])
    mean, spread = local_mean_and_spread(hu, TEXTURE_WINDOW_MM, pixel)
    noise = _noise(mean, spread, body)
    smooth = body & (spread <= max(SMOOTH_NOISE_FACTOR * noise, MIN_SMOOTH_HU)) & (mean <= MAX_HU)
    core = np.zeros_like(smooth)
    for low, radius in tiers:
        core |= open_2d(smooth & (mean >= low), radius, pixel)
    # Each slice's pieces are judged apart: a vertebral body must not be judged together
    # with the organ that touches it a slice away.
    pieces, _ = ndimage.label(core, structure=IN_PLANE)
    out = np.zeros_like(core)
    margin = max(GROW_MARGIN_NOISE * noise, MIN_GROW_MARGIN_HU)
    reach = (0, *(int(np.ceil((GROW_MM + SHELL_REACH_MM) / p)) + 1 for p in pixel))
    for index, where in enumerate(ndimage.find_objects(pieces), start=1):
        if where is None:
            continue
        box = tuple(
            slice(max(s.start - r, 0), s.stop + r) for s, r in zip(where, reach, strict=True)
        )
        piece = pieces[box] == index
        values = hu[box]
        level = float(np.median(values[piece]))
        if piece.sum() * pixel[0] * pixel[1] <= MAX_MARROW_MM2:
            ringed, bounded = _surroundings(piece[0], values[0], level, pixel)
            if ringed >= MIN_RINGED_SHARE or bounded < MIN_BOUNDED_SHARE:
                continue
        grown = dilate_2d(piece, GROW_MM, pixel, within=values <= level + margin)
        out[box] |= grown & body[box]
    return out


def _noise(mean: NDArray[np.float32], spread: NDArray[np.float32], body: Mask) -> float:
    """The image noise: the spread over the more homogeneous quarter of the soft tissue,
    enhanced or not (an organ that leaves the unenhanced range must not take the noise up)."""
    soft = body & (mean > 0.0) & (mean < MAX_HU)
    return float(np.percentile(spread[soft], 25)) if soft.any() else MIN_SMOOTH_HU


def _surroundings(
    piece: Mask, values: NDArray[np.int16], level: float, pixel: tuple[float, float]
) -> tuple[float, float]:
    """Shares of the directions round a slice's piece in which brighter tissue (cortex) and
    softer tissue (fat, muscle, a vessel wall) lie close to it."""
    band = dilate_2d(piece[np.newaxis], SHELL_REACH_MM, pixel)[0] & ~piece
    rows, cols = np.nonzero(piece)
    band_rows, band_cols = np.nonzero(band)
    angle = np.arctan2((band_rows - rows.mean()) * pixel[0], (band_cols - cols.mean()) * pixel[1])
    sector = ((angle + np.pi) / (2.0 * np.pi) * N_SECTORS).astype(int) % N_SECTORS
    around = values[band_rows, band_cols]
    seen = max(int((np.bincount(sector, minlength=N_SECTORS) > 0).sum()), 1)

    def share(which: NDArray[np.bool_]) -> float:
        return float((np.bincount(sector[which], minlength=N_SECTORS) > 0).sum() / seen)

    return share(around > level + STEP_HU), share(around < level - STEP_HU)
