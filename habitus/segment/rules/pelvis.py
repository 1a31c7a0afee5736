"""Skeletal muscle of the pelvis inside the body wall: the muscles lining the hip bones.

The iliacus fills the iliac fossa: it arises from the inner (concave) face of the iliac
wing and lines it as a band of muscle, with the bowel and the visceral fat in front of it.
Below the wings the obturator internus lines the inner face of the acetabulum, the ischium
and the pubis in the same way, and the psoas runs over the pelvic brim against the bone;
the bladder, the rectum and the uterus lie in the middle, apart from the bone, in their
fat. A muscle is told from an organ by its attachment and its shape, not its attenuation:

- The iliac wing is a plate of bone: in an axial slice a piece of bone away from the
  vertebral column at least ``PLATE_MM`` long and ``PLATE_AREA_MM2`` in area (a rib's
  section is shorter, and a lower rib cut along its length is thinner). The hip bones are
  the bone apart from the column that is one piece in 3D with a plate and larger than any
  rib (``MIN_HIP_BONE_CM3``): the wings, the acetabula, the ischia and the pubis.
- Soft tissue inside the wall is split into pieces at fat planes and necks (as for the
  psoas, organs.py). A piece that touches a hip bone (within ``TOUCH_MM``) and lies almost
  whole (``MIN_BAND_SHARE``) within ``LINING_MM`` of it is a band lining the bone: muscle.
  A loop of bowel or the liver against the bone reaches further from it. Not handled: an
  unenhanced iliac vessel lying in the band against the bone is taken with it (0.15-0.39 of
  the phantoms' vessel voxels below S1), and so is a loop of bowel thinner than the band
  against the inner face of the acetabulum (bowel below S1 labelled muscle 0.04-0.11 on
  seeds 1-3 with the femora apart from the hip bones, most of it lined; a loop is not told
  by the gas it holds either: leaving out the pieces against gas kept a third of it and
  lost 0.02 of the iliacus). All of that bowel lies in the slices where the phantoms paint
  bowel on the bare hip bone, with no muscle or fat between (bench/eval_rules_pelvic_organs.py);
  on a CT the bone's inner face is lined by muscle. Tried there and dropped (seeds 1-3,
  bowel 0.109/0.050/0.096, vessels 0.10/0.15/0.39, iliacus 0.85/0.84/0.77 before): pieces
  with more than 0.3 of their outline on other soft tissue left out (bowel 0.076/0.049/0.070,
  iliacus 0.80/0.80/0.74), the lining cut 15 mm from the bone (bowel 0.088/0.040/0.074,
  vessels 0.06/0.12/0.37, iliacus 0.84/0.83/0.76), the lining taken only under lining in
  the slice above (bowel 0.079/0.030/0.024, vessels 0.09/0.15/0.00, iliacus
  0.63/0.67/0.61); the lined bowel and muscle pieces overlap in size, reach from the bone,
  contact with it and fat round them.
- Tissue enhanced above ``MUSCLE_HU``'s top (a vessel with contrast) is never muscle,
  except the rim of the muscle on the bone, lifted by the bone's partial volume (organs.py).

The glutei, the hip muscles and the roots of the thighs lie outside the bony pelvis. The
wall rule alone takes too thin a ring there (the muscles 30-40 mm thick and marbled with
fat), so in the slices of the pelvis the cavity is kept within the ring of the hip bones and
the sacrum, and in front of it between the anterior iliac spines (``pelvic_bounds``); where
the pubis closes the ring, within the ring only. On the phantoms this raised the muscle
below S1 labelled muscle from 0.60-0.67 to 0.76-0.81; lining every hip bone, not only the
wings, and the muscle's rim on the bone (organs.py) raised the muscle within 4.5 mm of the
bone below S1 from 0.80-0.86 to 0.89-0.90 muscle.

The pelvic floor closes the cavity from below (``_above_pelvic_floor``): the levator ani
spans the line from the lower border of the pubic symphysis to the tip of the coccyx (the
pubococcygeal line of pelvic-floor imaging), and below it lies the perineum, muscle and the
fat of the ischioanal fossae, with no peritoneal cavity. The spine's landmarks are carried
on below the coccyx (spine.py), so the column is followed down in its own rows to its tip
and no bone below it is column (a shallow pelvis's pubis, less than ``PUBIS_AHEAD_MM`` in
front of the coccyx, was taken for it). Where the floor rises from the symphysis to the
coccyx, the cavity is kept within the ring of the slice's bone (the pubis and the ischia),
found one piece with a wing or not (the phantoms' are a piece of their own, too small for a
hip bone). On the phantoms (seeds 1-3, 3 mm, femora apart from the hip bones, old and new
rules on the same phantoms) the muscle below S1 labelled muscle rose from 0.77/0.84/0.83 to
0.92/0.88/0.88, the perineum's share of it labelled organ from 0.10-0.13 to 0.00-0.02;
psoas, iliacus and organs unchanged. Not handled: the piriformis (it lies on the sacrum,
which is the column here) and the muscle the phantoms paint between the ischia behind the
organs (0.01-0.03 of the muscle below S1); the lower anterior wall (0.06-0.10 of it), which
the phantoms paint 30-39 mm thick against the bowel, beyond the wall rule's 20 mm (a real
rectus abdominis is 10-20 mm thick, with the prevesical fat behind it).

Shaped on: the phantoms of habitus/phantoms (iliac wings from the crest at L4 down to
the hips, iliacus a band 15 mm thick inside them; 3 mm slices, 1.5 mm pixels, seeds 1-3).
Checked against the shared real scans (T11-L2, no pelvis), where lower ribs lie against
the liver and the spleen and must not carry them in.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.morphology import convex_hull_image

from habitus.labels import MUSCLE_HU
from habitus.segment.rules.morphology import Mask
from habitus.segment.rules.organs import bone_rim, split_at_fat_planes
from habitus.segment.rules.spine import Spine

PLATE_MM = 60.0
PLATE_AREA_MM2 = 400.0
COLUMN_REACH_MM = 45.0  # bone this close to the spine's midline belongs to the column
TOUCH_MM = 3.0
LINING_MM = 25.0  # a muscle lining a bone: the iliacus is about 15 mm thick
MIN_BAND_SHARE = 0.9
SYMPHYSIS_HALF_WIDTH_MM = 10.0
PUBIS_AHEAD_MM = 40.0  # the pubis lies far in front of the sacrum and the coccyx
MIN_HIP_BONE_CM3 = 60.0  # an adult hip bone is 150-250 cm3; a rib 5-30
COCCYX_HALF_WIDTH_MM = 10.0  # the sacrum and the coccyx cross the midline
COLUMN_STEP_MM = 10.0  # the column's rows move less than this from slice to slice
COLUMN_GAP_MM = 10.0  # a disc or a joint of the coccyx; the column ends past such a gap


def iliacus_muscle(
    soft: Mask, hu: NDArray[np.int16], bone: Mask, spine: Spine, spacing: tuple[float, float, float]
) -> Mask:
    """The soft tissue inside the wall (``soft``) lining the inner face of the hip bones."""
    pixel = (spacing[1], spacing[2])
    out = np.zeros_like(soft)
    _, hip = _hip_bones(bone, spine, _coccyx_tip(bone, spine, spacing), spacing)
    for k in map(int, np.nonzero(hip.any(axis=(1, 2)))[0]):
        if not soft[k].any():
            continue
        distance = ndimage.distance_transform_edt(~hip[k], sampling=pixel)
        near = distance <= LINING_MM + TOUCH_MM
        # Denser than muscle is contrast, except in the bone's partial volume (the rim of
        # the muscle lining it).
        here = soft[k] & ((hu[k] <= MUSCLE_HU[1]) | bone_rim(bone[k], pixel))
        rows_hit = np.nonzero((near & here).any(axis=1))[0]
        cols_hit = np.nonzero((near & here).any(axis=0))[0]
        if rows_hit.size == 0:
            continue
        margin = (int(2 * LINING_MM / pixel[0]), int(2 * LINING_MM / pixel[1]))
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
        band = np.bincount(pieces[d <= LINING_MM], minlength=n) >= MIN_BAND_SHARE * total
        lining = touches & band
        lining[0] = False
        out[k][box] |= lining[pieces]
    return out


def pelvic_bounds(bone: Mask, spine: Spine, spacing: tuple[float, float, float]) -> Mask:
    """Where the body's cavity may lie: within and in front of the bony pelvis.

    In the slices of the pelvis the cavity is the space that the hip bones and the sacrum
    enclose, and the lower abdomen in front of it between the iliac wings; the glutei, the
    hip muscles and the roots of the thighs lie outside the ring of bone, however thick and
    marbled with fat they are. A slice is bounded only where the hip bones
    (:func:`_hip_bones`) show on both sides of the midline; elsewhere (above the crests, a
    scan that stops above them) everything is allowed. A hip bone is large: a scan that
    holds only the tops of the crests is not bounded.
    """
    pixel = (spacing[1], spacing[2])
    cols = np.arange(bone.shape[2])[np.newaxis, :]
    tip = _coccyx_tip(bone, spine, spacing)
    away, hip = _hip_bones(bone, spine, tip, spacing)
    allowed = _above_pelvic_floor(bone, spine, hip, tip, spacing)
    rows = np.arange(bone.shape[1])[:, np.newaxis]
    # Where the floor rises from the symphysis to the coccyx, the cavity lies within the
    # ring of the pubis and the ischia, whether or not they are found one piece with a wing.
    floored = allowed.any(axis=(1, 2)) & ~allowed.all(axis=(1, 2))
    for k in map(int, np.nonzero(floored & ~_on_both_sides(hip, spine))[0]):
        if _on_both_sides(bone[k][np.newaxis], spine, first=k)[0]:
            allowed[k] &= convex_hull_image(bone[k])
    for k in map(int, np.nonzero(hip.any(axis=(1, 2)))[0]):
        hip_cols = np.nonzero(hip[k].any(axis=0))[0]
        midline = spine.midline_col[k] if spine.found(k) else (hip_cols[0] + hip_cols[-1]) / 2
        if not (hip_cols < midline).any() or not (hip_cols > midline).any():
            continue
        ring = convex_hull_image(bone[k] & (hip[k] | ~away[k]))
        if _closed_in_front(bone[k], spine, k, midline, cols, pixel):
            allowed[k] &= ring  # the pubis closes the ring: the true pelvis lies within it
            continue
        # In front of the ring, up to the abdominal wall, between the foremost points of the
        # hip bones (the anterior iliac spines): the lower abdomen. Beside them lie the hip
        # flexors and the thigh muscles.
        tips = [_foremost_col(hip[k] & side) for side in (cols < midline, cols > midline)]
        between = (cols >= min(tips)) & (cols <= max(tips))
        back = ring.shape[0] - 1 - np.argmax(ring[::-1], axis=0)
        allowed[k] &= ring | (between & ring.any(axis=0) & (rows <= back[np.newaxis, :]))
    return allowed


def _on_both_sides(mask: Mask, spine: Spine, first: int = 0) -> NDArray[np.bool_]:
    """Per slice (slice ``first`` of the scan first): whether ``mask`` shows on both sides of
    the spine's midline (of the middle of the mask where no spine is found)."""
    out = np.zeros(mask.shape[0], dtype=bool)
    for i in range(mask.shape[0]):
        cols = np.nonzero(mask[i].any(axis=0))[0]
        if cols.size == 0:
            continue
        k = first + i
        midline = spine.midline_col[k] if spine.found(k) else (cols[0] + cols[-1]) / 2
        out[i] = bool((cols < midline).any() and (cols > midline).any())
    return out


def _above_pelvic_floor(
    bone: Mask,
    spine: Spine,
    hip: Mask,
    tip: tuple[int, float] | None,
    spacing: tuple[float, float, float],
) -> NDArray[np.bool_]:
    """Where the pelvic floor allows the cavity: above the plane from the lower border of the
    pubic symphysis to the tip of the coccyx (the pubococcygeal line).

    The levator ani spans that line; below it lie the perineum (the ischioanal fossae, the
    anal canal, the roots of the thighs), with no peritoneal cavity; above it, the bladder,
    the prostate and the rectum. The scan must show the symphysis and the coccyx below the
    top of the hip bones; elsewhere (a scan that stops above them) the floor is not drawn.
    """
    allowed = np.ones_like(bone)
    levels = np.nonzero(hip.any(axis=(1, 2)))[0]
    if levels.size == 0:
        return allowed
    top = int(levels[-1])  # the iliac crest: the sternum above it is no symphysis
    pixel = (spacing[1], spacing[2])
    symphysis: tuple[int, float] | None = None
    for k in range(top + 1):
        pubis = _midline_bone_rows(bone, spine, k, SYMPHYSIS_HALF_WIDTH_MM, pixel, ahead=True)
        if pubis.size:
            symphysis = (k, float(pubis.max()))  # its back
            break
    if tip is None or symphysis is None or tip[1] <= symphysis[1]:
        return allowed
    # Slice index of the floor at each row, along the line through the two points.
    # In front of the symphysis it stays at the symphysis's lower border, behind the coccyx
    # at its tip (the rectum lies in the hollow of the sacrum, behind the tip).
    slope = (tip[0] - symphysis[0]) / (tip[1] - symphysis[1])
    floor = symphysis[0] + (np.arange(bone.shape[1]) - symphysis[1]) * slope
    floor = np.clip(floor, min(tip[0], symphysis[0]), max(tip[0], symphysis[0]))
    slices = np.arange(bone.shape[0])[:, np.newaxis]
    allowed[:] = (slices >= floor[np.newaxis, :])[:, :, np.newaxis]
    return allowed


def _midline_bone_rows(
    bone: Mask, spine: Spine, k: int, half_width_mm: float, pixel: tuple[float, float], ahead: bool
) -> NDArray[np.int64]:
    """The rows of slice ``k`` with bone across the midline: far in front of the vertebral
    bodies (the pubis) with ``ahead``, else not (the column)."""
    if not spine.found(k):
        return np.zeros(0, dtype=np.int64)
    reach = half_width_mm / pixel[1]
    midline = spine.midline_col[k]
    band = bone[k][:, max(int(np.ceil(midline - reach)), 0) : int(np.floor(midline + reach)) + 1]
    rows = np.nonzero(band.any(axis=1))[0]
    in_front = rows < spine.front_row[k] - PUBIS_AHEAD_MM / pixel[0]
    return rows[in_front] if ahead else rows[~in_front]


def _coccyx_tip(
    bone: Mask, spine: Spine, spacing: tuple[float, float, float]
) -> tuple[int, float] | None:
    """The lowest slice holding the column and the row of the column's front there; None
    where the scan holds no column.

    The column is followed down from the top of the scan: bone on its midline, not far in
    front of the vertebral bodies, in the rows of the column in the slices above it
    (``COLUMN_STEP_MM``), over gaps no longer than ``COLUMN_GAP_MM`` (a disc, the joints of
    the coccyx). Below the tip the spine's landmarks are carried on from the slices above
    (spine.py), but no bone there is the column: the pubis, which in a shallow pelvis lies
    less than ``PUBIS_AHEAD_MM`` in front of the coccyx, the ischia and the femora.
    """
    slice_mm, pixel = spacing[0], (spacing[1], spacing[2])
    step = COLUMN_STEP_MM / pixel[0]
    tip: tuple[int, float] | None = None
    rows: tuple[float, float] | None = None
    gap = 0.0
    for k in range(bone.shape[0] - 1, -1, -1):
        found = _midline_bone_rows(bone, spine, k, COCCYX_HALF_WIDTH_MM, pixel, ahead=False)
        if rows is not None:
            found = found[(found >= rows[0] - step) & (found <= rows[1] + step)]
        if found.size:
            tip, rows, gap = (k, float(found.min())), (float(found.min()), float(found.max())), 0.0
        elif rows is not None:
            gap += slice_mm
            if gap > COLUMN_GAP_MM:
                break
    return tip


def _hip_bones(
    bone: Mask, spine: Spine, tip: tuple[int, float] | None, spacing: tuple[float, float, float]
) -> tuple[Mask, Mask]:
    """The bone apart from the vertebral column (none below the coccyx's ``tip``), and the hip
    bones among it.

    The hip bones are the pieces of it that are one piece in 3D with a plate (an iliac wing)
    and larger than any rib (``MIN_HIP_BONE_CM3``).
    """
    slice_mm, pixel = spacing[0], (spacing[1], spacing[2])
    cols = np.arange(bone.shape[2])[np.newaxis, :]
    away = np.zeros_like(bone)
    plates = np.zeros_like(bone)
    for k in range(bone.shape[0]):
        if tip is not None and k < tip[0]:
            away[k] = bone[k]  # below the coccyx: no column
        elif bone[k].any():
            away[k] = _away_from_column(bone[k], spine, k, cols, pixel)
            plates[k] = _plates(away[k], pixel)
    if not plates.any():
        return away, plates
    parts, count = ndimage.label(away)
    voxel_cm3 = pixel[0] * pixel[1] * slice_mm / 1000.0
    volume = np.bincount(parts.ravel(), minlength=count + 1) * voxel_cm3
    hip_parts = np.zeros(count + 1, dtype=bool)
    hip_parts[np.unique(parts[plates])] = True
    hip_parts &= volume >= MIN_HIP_BONE_CM3  # a rib, even one taken for a plate, is smaller
    hip_parts[0] = False
    return away, hip_parts[parts]


def _foremost_col(bone: Mask) -> int:
    """The column of the foremost (lowest-row) pixel of a mask that holds some."""
    rows, cols = np.nonzero(bone)
    return int(cols[np.argmin(rows)])


def _closed_in_front(
    bone: Mask,
    spine: Spine,
    k: int,
    midline: float,
    cols: NDArray[np.int64],
    pixel: tuple[float, float],
) -> bool:
    """Whether bone crosses the midline well in front of the spine: the pubic symphysis."""
    near_midline = bone & (np.abs(cols - midline) * pixel[1] <= SYMPHYSIS_HALF_WIDTH_MM)
    if not spine.found(k):
        return bool(near_midline.any())
    rows = np.arange(bone.shape[0])[:, np.newaxis]
    ahead = rows < spine.front_row[k] - PUBIS_AHEAD_MM / pixel[0]
    return bool((near_midline & ahead).any())


def _away_from_column(
    bone: Mask, spine: Spine, k: int, cols: NDArray[np.int64], pixel: tuple[float, float]
) -> Mask:
    """The bone of a slice apart from the vertebral column (all of it where none is found)."""
    if not spine.found(k):
        return bone.copy()
    return bone & (np.abs(cols - spine.midline_col[k]) * pixel[1] > COLUMN_REACH_MM)


def _plates(away: Mask, pixel: tuple[float, float]) -> Mask:
    """The plates of bone (iliac wings) among a slice's bone apart from the column."""
    parts, count = ndimage.label(away)
    if count == 0:
        return np.zeros_like(away)
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
