"""Skeletal muscle of the pelvis inside the body wall: the iliacus.

The iliacus fills the iliac fossa: it arises from the inner (concave) face of the iliac
wing and lines it as a band of muscle, with the bowel and the visceral fat in front of it.
It is told from an organ by its attachment and its shape, not its attenuation:

- The iliac wing is a plate of bone: in an axial slice a piece of bone away from the
  vertebral column at least ``PLATE_MM`` long and ``PLATE_AREA_MM2`` in area (a rib's
  section is shorter, and a lower rib cut along its length is thinner).
- Soft tissue inside the wall is split into pieces at fat planes and necks (as for the
  psoas, organs.py). A piece that touches the plate (within ``TOUCH_MM``) and lies almost
  whole (``MIN_BAND_SHARE``) within ``ILIACUS_MM`` of it is a band lining the bone: muscle.
  A loop of bowel or the liver against the bone reaches further from it. Not handled: an
  unenhanced iliac vessel lying in the band against the bone is taken with it (up to 0.29 of
  the phantoms' vessel voxels below S1, seed 3).
- Tissue enhanced above ``MUSCLE_HU``'s top (a vessel with contrast) is never muscle.

The glutei lie outside the bony pelvis, in the body wall, and are muscle by the wall rule
down to the iliac wings. Not handled: from the hips down (the wall 30-40 mm thick, marbled
with fat) the wall rule takes too thin a ring and much of the glutei and the thigh roots
inside it are labelled organ (0.60-0.67 of the phantoms' muscle below S1 is muscle).

Shaped on: the phantoms of model_export/phantoms (iliac wings from the crest at L4 down to
the hips, iliacus a band 15 mm thick inside them; 3 mm slices, 1.5 mm pixels, seeds 1-3).
Checked against the shared real scans (T11-L2, no pelvis), where lower ribs lie against
the liver and the spleen and must not carry them in.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.labels import MUSCLE_HU
from habitus.segment.rules.morphology import Mask
from habitus.segment.rules.organs import split_at_fat_planes
from habitus.segment.rules.spine import Spine

PLATE_MM = 60.0
PLATE_AREA_MM2 = 400.0
COLUMN_REACH_MM = 45.0  # bone this close to the spine's midline belongs to the column
TOUCH_MM = 3.0
ILIACUS_MM = 25.0
MIN_BAND_SHARE = 0.9


def iliacus_muscle(
    soft: Mask, hu: NDArray[np.int16], bone: Mask, spine: Spine, spacing: tuple[float, float, float]
) -> Mask:
    """The soft tissue inside the wall (``soft``) lining the inner face of the iliac wings."""
    pixel = (spacing[1], spacing[2])
    out = np.zeros_like(soft)
    cols = np.arange(soft.shape[2])[np.newaxis, :]
    for k in range(soft.shape[0]):
        if not soft[k].any() or not bone[k].any():
            continue
        plate = _plates(bone[k], spine, k, cols, pixel)
        if not plate.any():
            continue
        distance = ndimage.distance_transform_edt(~plate, sampling=pixel)
        near = distance <= ILIACUS_MM + TOUCH_MM
        here = soft[k] & (hu[k] <= MUSCLE_HU[1])
        rows_hit = np.nonzero((near & here).any(axis=1))[0]
        cols_hit = np.nonzero((near & here).any(axis=0))[0]
        if rows_hit.size == 0:
            continue
        margin = (int(2 * ILIACUS_MM / pixel[0]), int(2 * ILIACUS_MM / pixel[1]))
        box = (
            slice(max(rows_hit[0] - margin[0], 0), rows_hit[-1] + margin[0] + 1),
            slice(max(cols_hit[0] - margin[1], 0), cols_hit[-1] + margin[1] + 1),
        )
        pieces, count = split_at_fat_planes(here[box], pixel)
        if count == 0:
            continue
        d = distance[box]
        n = count + 1
        total = np.maximum(np.bincount(pieces.ravel(), minlength=n), 1)
        touches = np.bincount(pieces[d <= TOUCH_MM], minlength=n) > 0
        band = np.bincount(pieces[d <= ILIACUS_MM], minlength=n) >= MIN_BAND_SHARE * total
        lining = touches & band
        lining[0] = False
        out[k][box] |= lining[pieces]
    return out


def _plates(
    bone: Mask, spine: Spine, k: int, cols: NDArray[np.int64], pixel: tuple[float, float]
) -> Mask:
    """The plates of bone of a slice (iliac wings), apart from the vertebral column."""
    free = bone.copy()
    if spine.found(k):
        free &= np.abs(cols - spine.midline_col[k]) * pixel[1] > COLUMN_REACH_MM
    parts, count = ndimage.label(free)
    if count == 0:
        return np.zeros_like(bone)
    keep = np.zeros(count + 1, dtype=bool)
    area = np.bincount(parts.ravel(), minlength=count + 1) * pixel[0] * pixel[1]
    for i, where in enumerate(ndimage.find_objects(parts), start=1):
        if where is None or area[i] < PLATE_AREA_MM2:
            continue
        length = np.hypot(
            (where[0].stop - where[0].start) * pixel[0], (where[1].stop - where[1].start) * pixel[1]
        )
        keep[i] = length >= PLATE_MM
    keep[0] = False
    return keep[parts]
