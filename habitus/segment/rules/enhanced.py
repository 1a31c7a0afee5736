"""Enhanced blood and organs: large, smooth regions denser than soft tissue, never bone.

With intravenous contrast the heart chambers, the aorta and the great veins read 150-600 HU
and the liver, spleen and kidneys 100-200 HU: as dense as cancellous bone or cartilage, and
in the arterial phase above the 250 HU that seeds the skeleton. What tells them apart is
their shape and texture. A pool of blood or an enhanced organ is a thick region whose
attenuation varies no more than the image noise does; bone is a thin cortex (sharp, bright
edges) around a grainy marrow. On thick slices a vertebral body's marrow reads smooth too,
so each slice's piece is judged by what lies round it: a piece ringed by brighter tissue
(cortex), or not bounded by softer tissue on at least half its sides (marrow continues into
marrow of about its own density), is bone; blood and organs are bounded by fat, muscle or a
vessel wall, and touch a bone on one side at most.

Pools are found in two tiers: anything above ``DENSE_HU`` (blood in the arterial and
portal-venous phases) at least ``DENSE_RADIUS_MM`` thick, and anything above ``MIN_HU``
(enhanced parenchyma, blood in the delayed phase) at least ``ORGAN_RADIUS_MM`` thick, which
costal cartilage, as dense but a centimetre or so across, is not. Each pool is then grown
back over the rim that the texture window and partial volume took off it, into voxels no
denser than the pool itself: a cortex it touches is brighter and stays bone.

The thresholds were shaped on contrast painted into the two shared real scans (a 3 mm
non-contrast abdomen, where vertebral bodies read smooth at about 110 HU inside a 200-350 HU
shell, and a 1 mm portal-venous PET-CT) and checked on the arterial and venous phantoms;
they rest on the noise measured in each scan, not on either scan's levels.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.segment.rules.morphology import (
    IN_PLANE,
    Mask,
    dilate_2d,
    mean_2d,
    odd_window,
    open_2d,
)

MIN_HU = 70.0  # below the lowest bone thresholds (cartilage 75, cancellous bone 80 HU)
DENSE_HU = 150.0
MAX_HU = 700.0  # cortical bone lies above; blood seldom does
DENSE_RADIUS_MM = 3.0  # a vessel about 1 cm across or more (the iliac arteries)
ORGAN_RADIUS_MM = 6.0  # thicker than any costal cartilage
TEXTURE_WINDOW_MM = 5.0
SMOOTH_NOISE_FACTOR = 2.5  # a pool varies about as much as the noise
MIN_SMOOTH_HU = 20.0
SHELL_STEP_HU = 60.0  # cortex reads at least this much above the marrow it encloses
SHELL_REACH_MM = 6.0  # the cortex lies within this of the smooth marrow inside it
N_SECTORS = 24
MAX_MARROW_MM2 = 3000.0  # a larger enclosed area is a rib cage or pelvic ring, not a bone
MAX_ENCLOSED_SHARE = 0.6  # of the directions, cortex close to a marrow cavity
MIN_BOUNDED_SHARE = 0.5  # of the directions, softer tissue close to a pool
GROW_MM = 5.0
GROW_MARGIN_NOISE = 3.0
MIN_GROW_MARGIN_HU = 50.0


def enhanced_pools(hu: NDArray[np.int16], body: Mask, spacing: tuple[float, float, float]) -> Mask:
    """Voxels of enhanced blood pools and organs: never bone, whatever bone lies beside."""
    pixel = (spacing[1], spacing[2])
    mean, spread = _local_mean_and_spread(hu, pixel)
    noise = _noise(mean, spread, body)
    smooth = body & (spread <= max(SMOOTH_NOISE_FACTOR * noise, MIN_SMOOTH_HU)) & (mean <= MAX_HU)
    core = open_2d(smooth & (mean >= DENSE_HU), DENSE_RADIUS_MM, pixel)
    core |= open_2d(smooth & (mean >= MIN_HU), ORGAN_RADIUS_MM, pixel)
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
            brighter, darker = _surroundings(piece[0], values[0], level, pixel)
            if brighter >= MAX_ENCLOSED_SHARE or darker < MIN_BOUNDED_SHARE:
                continue
        grown = dilate_2d(piece, GROW_MM, pixel, within=values <= level + margin)
        out[box] |= grown & body[box]
    return out


def _local_mean_and_spread(
    hu: NDArray[np.int16], pixel: tuple[float, float]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    size = odd_window(TEXTURE_WINDOW_MM, pixel, minimum=3)
    values = hu.astype(np.float32)
    mean = mean_2d(values, size)
    spread = np.sqrt(np.maximum(mean_2d(values * values, size) - mean * mean, 0.0))
    return mean, spread


def _noise(mean: NDArray[np.float32], spread: NDArray[np.float32], body: Mask) -> float:
    """The image noise: the spread over the more homogeneous quarter of the soft tissue,
    enhanced or not (an organ that leaves the unenhanced range must not take the noise up)."""
    soft = body & (mean > 0.0) & (mean < MAX_HU)
    return float(np.percentile(spread[soft], 25)) if soft.any() else MIN_SMOOTH_HU


def _surroundings(
    piece: Mask, values: NDArray[np.int16], level: float, pixel: tuple[float, float]
) -> tuple[float, float]:
    """Shares of the directions round a slice's piece in which brighter tissue (cortex) and
    darker tissue (fat, muscle, the wall of a vessel) lie close to it.

    A marrow cavity is ringed by cortex nearly all round and by marrow of about its own
    density; a vessel or organ is bounded by softer tissue, and touches a bone on one side
    at most.
    """
    band = dilate_2d(piece[np.newaxis], SHELL_REACH_MM, pixel)[0] & ~piece
    rows, cols = np.nonzero(piece)
    centre = (float(rows.mean()), float(cols.mean()))
    band_rows, band_cols = np.nonzero(band)
    angle = np.arctan2((band_rows - centre[0]) * pixel[0], (band_cols - centre[1]) * pixel[1])
    sector = ((angle + np.pi) / (2.0 * np.pi) * N_SECTORS).astype(int) % N_SECTORS
    around = values[band_rows, band_cols]
    seen = max(int((np.bincount(sector, minlength=N_SECTORS) > 0).sum()), 1)

    def share(which: NDArray[np.bool_]) -> float:
        return float((np.bincount(sector[which], minlength=N_SECTORS) > 0).sum() / seen)

    return share(around > level + SHELL_STEP_HU), share(around < level - SHELL_STEP_HU)
