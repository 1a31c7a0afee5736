"""Skeletal muscle inside the body wall: the psoas, the crura and the quadratus lumborum.

Soft tissue inside the wall is organs and vessels, except the muscles that lie against the
spine. Which is which is decided by anatomy, not attenuation (unenhanced muscle, kidney,
bowel and blood all read 30 to 60 HU):

- Soft tissue is split into pieces where a fat plane, or a neck narrower than the tissue on
  either side, parts it: a watershed of the distance to the nearest fat (each piece grows
  from its own thickest part). An organ pressed against a muscle stays a piece of its own
  as long as either a partial fat plane or a waist lies between them.
- The psoas arises from the sides of the lumbar vertebral bodies and their transverse
  processes: a piece that reaches to within ``ORIGIN_MM`` of the spine's bone, beside or
  behind the front of the vertebral body, and whose centre lies no further forward than
  ``PSOAS_AHEAD_MM`` in front of it, is muscle however far it spreads to the side (the
  psoas of L4-L5 is 5 cm across). Pieces larger than any psoas (``MAX_PSOAS_MM2``) are
  organs glued to it.
- The psoas runs the length of the lumbar spine: a slice where the judgement above lost it
  (at a disc, or where it was glued to a neighbour for a slice) takes it back from the
  slices above and below it (``SLICE_GAP_MM``). A slice through a disc may show the arch
  alone, whose front lies a body's depth behind the bodies' (``ARCH_BEHIND_BODY_MM``): the
  psoas there is judged from the bodies' front as well, where it continues the psoas found
  beside the bodies above and below (phantoms' psoas at L2-L3, seeds 1-2: 0.86-0.88 -> 0.94-0.99).
- The crura and the thin upper psoas lie in the zone that starts just in front of the
  vertebral body and reaches ``PARAVERTEBRAL_REACH_MM`` to either side of the spine's
  midline, and the quadratus lumborum further out (``POSTERIOR_REACH_MM``) behind the level
  of the canal against the body wall. A piece lying mostly in the part beside the spine, or
  mostly in the zone and against the wall, is muscle within the zone. The zone is drawn from
  the bodies' front and the arches' back also where a slice cuts one of them alone (the arch
  at a disc, the body between two arches), and a disc (a slice without a body) is cut out of
  the pieces, so that it does not join the organs in front of the spine to the psoas beside
  it (phantoms' psoas at L1, seeds 1-2: 0.82 -> 0.92-0.94; kidneys labelled muscle per level
  at most 0.051 -> 0.008; ts-upper-abdomen's right kidney: 101 voxels of muscle -> 0).
- Tissue enhanced above ``MUSCLE_HU``'s top (contrast in a kidney or a vessel) is never
  muscle, except within the bone's partial volume (``BONE_BLUR_MM``): the rim of the psoas
  on the vertebral body reads denser than muscle (on the phantoms 0.39-0.82 of the psoas's
  voxels against the bone were muscle before, 0.92-0.97 after). The wall of an enhanced
  vessel against the bone stays vessel: it lies within ``VESSEL_WALL_MM`` of the vessel.

Shaped on: ts-upper-abdomen (unenhanced, 3 mm; its L1-L2 psoas is a strip 2-4 voxels wide
parted from the crus and kidney by partial-volume fat) and the phantoms of
habitus/phantoms (psoas L1 to the groin, 0.7-1.5 mm pixels).
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from habitus.labels import FAT_HU, MUSCLE_HU
from habitus.segment.rules.morphology import Mask, bridge_slices, dilate_2d, open_2d
from habitus.segment.rules.spine import Spine

BESIDE, BEHIND = 1, 2

PARAVERTEBRAL_REACH_MM = 45.0
POSTERIOR_REACH_MM = 90.0  # behind the canal: the back muscles and quadratus lumborum
FRONT_MARGIN_MM = 5.0
STRAND_MM = 2.0  # strands thinner than about twice this are cut between pieces
MIN_INSIDE_FRACTION = 0.5
ORGAN_REACH_MM = 60.0  # how far around the zone a piece is followed to judge it
PSOAS_REACH_MM = 110.0  # the psoas of L5 and the tissue around it, from the midline
ORIGIN_MM = 6.0  # a psoas piece reaches this close to the vertebral body or process
ORIGIN_BEHIND_FRONT_MM = 2.0  # its origin lies beside the body, not in front (the aorta)
PSOAS_AHEAD_MM = 10.0  # how far forward of the vertebral body a psoas centre may lie
MAX_PSOAS_MM2 = 4000.0  # larger than the psoas of a muscular adult at L5 (about 2500)
SADDLE_MM = 1.0  # a neck must be this much thinner than the pieces either side of it
BODY_BAND_MM = (3.0, 20.0)  # where the body's width is measured, behind its front
BODY_HALF_WIDTH_MM = 8.0  # the body's middle, about the midline: bone there unless at a disc
ARCH_BEHIND_BODY_MM = 15.0  # the arch's front lies a body's depth (25-35 mm) behind the body's
DISC_MM = 8.0  # the column's bone seen from a disc: the vertebrae above and below
VESSEL_WALL_MM = 3.0
MIN_FREE_OUTLINE = 0.5
MAX_SHARED_OUTLINE = 0.45  # a lobe cut off an organ by the watershed shares more
BELLY_REACH = 1.6  # a belly rests on the bone: its centre about one radius and a half beyond it
SLICE_GAP_MM = 6.0  # slices where the psoas was lost are bridged from those around
BRIDGED_MAX_HU = 100.0  # muscle reads 30-60 HU, up to about 80 with contrast
BONE_BLUR_MM = 1.5  # how far the bone's partial volume lifts the tissue against it
MAX_RIB_SECTION_MM2 = 400.0  # a rib cut obliquely; the hip bone's wing beside L4-L5 is larger


def paravertebral_zone(
    shape: tuple[int, int, int], spine: Spine, spacing: tuple[float, float, float]
) -> NDArray[np.uint8]:
    """Where the muscles against the spine lie: 1 beside the spine, 2 further out behind it.

    Measured from the vertebral bodies' front and the arches' back, also where a slice shows
    one of them alone (:func:`_body_fronts`, :func:`_arch_backs`).
    """
    pixel = (spacing[1], spacing[2])
    fronts = _body_fronts(spine, spacing)
    backs = _arch_backs(spine, spacing)
    zone = np.zeros(shape, dtype=np.uint8)
    rows = np.arange(shape[1])[:, np.newaxis]
    cols = np.arange(shape[2])[np.newaxis, :]
    for k in range(shape[0]):
        if not spine.found(k):
            continue
        off_midline = np.abs(cols - spine.midline_col[k]) * pixel[1]
        behind_front = rows >= fronts[k] - FRONT_MARGIN_MM / pixel[0]
        behind_canal = rows >= (fronts[k] + backs[k]) / 2.0
        zone[k][behind_canal & (off_midline <= POSTERIOR_REACH_MM)] = BEHIND
        zone[k][behind_front & (off_midline <= PARAVERTEBRAL_REACH_MM)] = BESIDE
    return zone


def paravertebral_muscle(
    soft: Mask,
    hu: NDArray[np.int16],
    bone: Mask,
    zone: NDArray[np.uint8],
    wall: Mask,
    spine: Spine,
    spacing: tuple[float, float, float],
) -> Mask:
    """The soft tissue inside the wall that is muscle: psoas, crura, quadratus lumborum.

    ``soft`` is the soft tissue inside the wall, ``bone`` all bone, ``zone`` from
    :func:`paravertebral_zone`, ``wall`` the body wall ring.
    """
    pixel = (spacing[1], spacing[2])
    # The vertebral column's bone, also across a disc: the psoas arises from the discs too.
    # (Measured whether the wall takes the vertebra in or not.)
    reach_slices = int(round(DISC_MM / spacing[0]))
    column = ndimage.maximum_filter1d(
        _origins(bone, paravertebral_zone(bone.shape, spine, spacing) == BESIDE, spine, pixel).view(
            np.uint8
        ),
        size=2 * reach_slices + 1,
        axis=0,
    ).astype(bool)
    fronts = _body_fronts(spine, spacing)
    at_disc = np.isfinite(fronts) & (fronts != spine.front_row)
    bodiless = _without_body(bone, spine, fronts, spacing)
    judged_at_discs: list[tuple[int, tuple[slice, slice], NDArray[np.int32], NDArray[np.bool_]]]
    judged_at_discs = []
    out = np.zeros_like(soft)
    psoas_all = np.zeros_like(soft)
    reach = max(ORGAN_REACH_MM, PSOAS_REACH_MM - PARAVERTEBRAL_REACH_MM)
    margin = (int(reach / pixel[0]), int(reach / pixel[1]))
    for k in map(int, np.nonzero(zone.any(axis=(1, 2)))[0]):
        rows = np.nonzero(zone[k].any(axis=1))[0]
        cols = np.nonzero(zone[k].any(axis=0))[0]
        box = (
            slice(max(rows[0] - margin[0], 0), rows[-1] + margin[0] + 1),
            slice(max(cols[0] - margin[1], 0), cols[-1] + margin[1] + 1),
        )
        # Contrast-enhanced tissue (a kidney's cortex, a vessel) is never psoas; a disc
        # inside the column is neither psoas nor organ.
        enhanced = soft[k][box] & (hu[k][box] > MUSCLE_HU[1])
        # Tissue against the bone reads denser by partial volume: the rim of what lies there
        # (the psoas on the vertebral body), not contrast.
        enhanced &= ~bone_rim(bone[k][box], pixel)
        here = soft[k][box] & ~enhanced & ~column[k][box]
        if enhanced.any():
            # The wall of an enhanced vessel (the aorta's, against the crus) is vessel too.
            here &= ~dilate_2d(enhanced[np.newaxis], VESSEL_WALL_MM, pixel)[0]
        if not here.any():
            continue
        psoas = np.zeros_like(here)
        pieces, count = split_at_fat_planes(here, pixel)
        if count:
            origin = (box[0].start, box[1].start)
            judge = functools.partial(
                _psoas_pieces,
                pieces,
                count,
                column[k][box],
                hu[k][box] <= FAT_HU[1],
                zone[k][box],
                midline=spine.midline_col[k],
                origin=origin,
                pixel=pixel,
            )
            psoas = judge(front=spine.front_row[k])[pieces]
            if at_disc[k]:
                # Judged from the bodies' front too, where the psoas is found around.
                judged_at_discs.append((k, box, pieces, judge(front=fronts[k])))
        psoas_all[k][box] = psoas
        out[k][box] = _zone_muscle(
            soft[k][box], column[k][box] & bodiless[k], zone[k][box], wall[k][box], pixel
        )
    psoas_all |= _psoas_at_discs(judged_at_discs, psoas_all, reach_slices)
    # The psoas runs along the spine: a slice where the per-slice judgement lost it (a disc,
    # a piece glued to a neighbour for a slice) takes it back from the slices around it.
    # Not into tissue denser than muscle: blood in the delayed phase, beside the crus.
    like_muscle = soft & (hu <= BRIDGED_MAX_HU) & ~column
    return out | bridge_slices(psoas_all, like_muscle, SLICE_GAP_MM, spacing[0])


def _origins(bone: Mask, beside: Mask, spine: Spine, pixel: tuple[float, float]) -> Mask:
    """The bone beside the spine that the psoas arises from or lies on: not a rib.

    The lowest ribs fall from their heads past the kidney's upper pole, and a kidney within
    ``ORIGIN_MM`` of one was taken as psoas (phantom seeds 2, 3 and 5 at L1: 0.32, 0.19 and
    0.09 of the kidney labelled muscle). A rib's section stands apart from the vertebra's
    (the costovertebral joint) and is a bar of a few square centimetres even where the slice
    cuts it obliquely (``MAX_RIB_SECTION_MM2``); the vertebra (body, arch and the processes
    joined to them) crosses the midline, and the hip bone beside L4 to S1, on whose inner
    surface the psoas runs, is a plate many times larger.
    """
    out = np.zeros_like(bone)
    eight = np.ones((3, 3), dtype=bool)
    max_rib = MAX_RIB_SECTION_MM2 / (pixel[0] * pixel[1])
    for k in range(bone.shape[0]):
        if not spine.found(k) or not (bone[k] & beside[k]).any():
            continue
        pieces, count = ndimage.label(bone[k], structure=eight)
        keep = np.bincount(pieces.ravel(), minlength=count + 1) > max_rib
        keep[pieces[:, int(round(spine.midline_col[k]))]] = True
        keep[0] = False
        out[k] = keep[pieces] & beside[k]
    return out


def _psoas_at_discs(
    judged: list[tuple[int, tuple[slice, slice], NDArray[np.int32], NDArray[np.bool_]]],
    psoas: Mask,
    reach_slices: int,
) -> Mask:
    """The psoas at the discs: pieces judged psoas beside the disc that lie mostly
    (``MIN_INSIDE_FRACTION``) where the psoas is found beside the bodies above and below."""
    out = np.zeros_like(psoas)
    for k, box, pieces, is_psoas in judged:
        nearby = psoas[max(k - reach_slices, 0) : k + reach_slices + 1]
        around = np.asarray(nearby.any(axis=0), dtype=bool)[box]
        n = is_psoas.size
        total = np.maximum(np.bincount(pieces.ravel(), minlength=n), 1)
        on_psoas = np.bincount(pieces[around], minlength=n) >= MIN_INSIDE_FRACTION * total
        keep = np.asarray(is_psoas & on_psoas, dtype=bool)
        out[k][box] = keep[pieces]
    return out


def bone_rim(bone: Mask, pixel: tuple[float, float]) -> Mask:
    """The pixels of a slice within the partial volume of its bone (``BONE_BLUR_MM``)."""
    return dilate_2d(bone[np.newaxis], BONE_BLUR_MM, pixel)[0] & ~bone


def _zone_muscle(
    here: Mask, disc: Mask, zone: NDArray[np.uint8], wall: Mask, pixel: tuple[float, float]
) -> Mask:
    """The soft tissue of the zone that does not belong to an organ reaching into it.

    Soft tissue is split into pieces where thin strands join them; a piece is muscle if it
    lies mostly beside the spine (the crura), or mostly in the zone and against the body
    wall (the quadratus lumborum); a kidney lying far back is neither. Pieces judged organ
    keep the strands around them.

    A ``disc`` (where the slice shows no vertebral body, the column's footprint from the
    bodies above and below) joins the organs in front of the spine to the muscles beside it:
    the tissue around it is judged in pieces cut at the disc, and the disc's own tissue as
    it lies, with what it touches (as before the cut: the discs of ts-upper-abdomen stay
    out of the muscle).
    """
    in_zone = zone > 0
    if not (here & in_zone).any():
        return np.zeros_like(here)
    organs = _organ_reach(here & ~disc, in_zone, zone, wall, pixel)
    if disc.any():
        organs = np.where(disc, _organ_reach(here, in_zone, zone, wall, pixel), organs)
    return here & in_zone & ~organs


def _organ_reach(
    here: Mask, in_zone: Mask, zone: NDArray[np.uint8], wall: Mask, pixel: tuple[float, float]
) -> Mask:
    """The tissue of ``here`` that belongs to an organ: its pieces judged organ, and the
    strands within ``STRAND_MM`` of them (:func:`_zone_muscle`)."""
    cores = open_2d(here[np.newaxis], STRAND_MM, pixel)[0]
    pieces, count = ndimage.label(cores)
    if count == 0:
        return np.asarray(here & (zone != BESIDE))
    total = np.bincount(pieces.ravel(), minlength=count + 1)
    inside = np.bincount(pieces[in_zone], minlength=count + 1)
    beside = np.bincount(pieces[zone == BESIDE], minlength=count + 1)
    on_wall = np.bincount(pieces[ndimage.binary_dilation(wall)], minlength=count + 1)
    muscle = (beside >= MIN_INSIDE_FRACTION * total) | (
        (inside >= MIN_INSIDE_FRACTION * total) & (on_wall > 0)
    )
    organ = ~muscle
    organ[0] = False
    return np.asarray(dilate_2d(organ[pieces][np.newaxis], STRAND_MM, pixel)[0] & here)


def split_at_fat_planes(tissue: Mask, pixel: tuple[float, float]) -> tuple[NDArray[np.int32], int]:
    """Split a slice's soft tissue at fat planes and necks: a watershed of the distance to fat.

    Every piece grows from a thickest part that stands at least ``SADDLE_MM`` above the neck
    joining it to the next; a piece without such a part (a strand) joins its neighbour.
    """
    depth = ndimage.distance_transform_edt(tissue, sampling=pixel)
    step = min(pixel)
    # Quantised to half a pixel so that the plateaux of thin strips hold one marker.
    quantised = np.round(depth / (0.5 * step)).astype(np.int32)
    peaks = h_maxima(quantised, max(1, int(round(SADDLE_MM / (0.5 * step)))))
    markers, count = ndimage.label(peaks & tissue)
    if count == 0:
        return markers, 0
    pieces = watershed(-quantised, markers, mask=tissue)
    # Tissue cut off from every marker (cannot happen with a connected slice) stays apart.
    stray, strays = ndimage.label(tissue & (pieces == 0))
    pieces = np.where(stray > 0, stray + count, pieces).astype(np.int32)
    return pieces, count + strays


def _psoas_pieces(
    pieces: NDArray[np.int32],
    count: int,
    column: Mask,
    fat: Mask,
    zone: NDArray[np.uint8],
    front: float,
    midline: float,
    origin: tuple[int, int],
    pixel: tuple[float, float],
) -> NDArray[np.bool_]:
    """Per piece: True where it is psoas (``front``, ``midline``: the vertebral body's row
    and column, :func:`_body_fronts`).

    It arises beside the vertebral body (not in front of it, where the aorta and the vena
    cava lie against the bone), its centre lies to the side of the body about one radius of
    the piece away (a belly resting on the bone, not the tip of the spleen or the liver
    reaching in from further out), and it is a muscle belly of its own: most of its outline
    is fat or bone and less than half of it another piece (``MAX_SHARED_OUTLINE``): a lobe
    of the liver cut off by the watershed is outlined by the rest of the liver and the
    diaphragm.
    """
    shape = pieces.shape
    rows = np.broadcast_to(np.arange(shape[0])[:, np.newaxis] + origin[0], shape)
    cols = np.broadcast_to(np.arange(shape[1])[np.newaxis, :] + origin[1], shape)
    vertebra = column
    near_bone = dilate_2d(vertebra[np.newaxis], ORIGIN_MM, pixel)[0]
    beside_body = rows >= front + ORIGIN_BEHIND_FRONT_MM / pixel[0]
    n = count + 1

    def per_piece(where: Mask, weights: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        w = None if weights is None else weights[where]
        return np.bincount(pieces[where], weights=w, minlength=n).astype(np.float64)

    every = np.ones(shape, dtype=bool)
    total = np.maximum(per_piece(every), 1.0)
    arises = per_piece(near_bone & beside_body) > 0
    centre_row = per_piece(every, rows.astype(np.float64)) / total
    centre_col = per_piece(every, cols.astype(np.float64)) / total
    off_midline = np.abs(cols - midline) * pixel[1]
    far = per_piece(off_midline > PSOAS_REACH_MM) > 0
    edge = np.zeros(shape, dtype=bool)
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    on_edge = per_piece(edge) > 0
    free = _fat_or_bone_outline(pieces, fat | vertebra, n)
    shared = _fat_or_bone_outline(pieces, pieces > 0, n)
    half_width = _body_half_width(vertebra, front, midline, origin, pixel)
    beyond_body = np.abs(centre_col - midline) * pixel[1] - half_width
    area = total * pixel[0] * pixel[1]
    psoas = (
        arises
        & (centre_row >= front - PSOAS_AHEAD_MM / pixel[0])
        & (beyond_body >= 0.0)
        # A belly lying against the body's side: its centre about one radius beyond it.
        & (beyond_body <= BELLY_REACH * np.sqrt(area / np.pi))
        & (area <= MAX_PSOAS_MM2)
        & (free >= MIN_FREE_OUTLINE)
        & (shared <= MAX_SHARED_OUTLINE)
        & ~far
        & ~on_edge
    )
    psoas[0] = False
    return psoas


def _fat_or_bone_outline(pieces: NDArray[np.int32], free: Mask, n: int) -> NDArray[np.float64]:
    """Per piece, the share of its outline that borders ``free`` (fat or bone)."""
    padded = np.pad(pieces, 1)
    free_padded = np.pad(free, 1)
    centre = padded[1:-1, 1:-1]
    bordering = np.zeros(pieces.shape, dtype=bool)
    on_free = np.zeros(pieces.shape, dtype=bool)
    rows, cols = padded.shape
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        other = padded[1 + dr : rows - 1 + dr, 1 + dc : cols - 1 + dc]
        differs = (other != centre) & (centre > 0)
        bordering |= differs
        on_free |= differs & free_padded[1 + dr : rows - 1 + dr, 1 + dc : cols - 1 + dc]
    outline = np.bincount(pieces[bordering], minlength=n).astype(np.float64)
    return np.bincount(pieces[on_free], minlength=n) / np.maximum(outline, 1.0)


def _body_fronts(spine: Spine, spacing: tuple[float, float, float]) -> NDArray[np.float64]:
    """Per slice, the row of the vertebral body's anterior surface, also at a disc.

    At a disc the slice's bone may be the arch alone, whose front lies a body's depth behind
    the bodies' (``ARCH_BEHIND_BODY_MM`` or more): such a slice takes the median front of the
    slices within ``DISC_MM``, the bodies above and below it. (The psoas beside a disc was
    otherwise judged from the arch: far ahead of it, it was lost.)
    """
    return _row_from_neighbours(spine.front_row, +1, spacing)


def _row_from_neighbours(
    own: NDArray[np.float64], towards: int, spacing: tuple[float, float, float]
) -> NDArray[np.float64]:
    """Per slice, ``own``, or the median of the slices within ``DISC_MM`` where ``own`` lies an
    arch's depth (``ARCH_BEHIND_BODY_MM``) or more beyond it in the row direction ``towards``
    (+1: behind, a front cut at a disc; -1: in front, a back cut between two arches)."""
    if not np.isfinite(own).all():
        return own
    reach = int(round(DISC_MM / spacing[0]))
    around = ndimage.median_filter(own, size=2 * reach + 1, mode="nearest")
    return np.where(towards * (own - around) >= ARCH_BEHIND_BODY_MM / spacing[1], around, own)


def _without_body(
    bone: Mask, spine: Spine, fronts: NDArray[np.float64], spacing: tuple[float, float, float]
) -> NDArray[np.bool_]:
    """Per slice, True where the spine is found but no vertebral body is cut: no bone of the
    slice lies in the body's front (``BODY_BAND_MM`` behind the bodies' front, within the
    body's half width of the midline), as at a disc."""
    pixel = (spacing[1], spacing[2])
    out = np.zeros(bone.shape[0], dtype=bool)
    half = max(int(round(BODY_HALF_WIDTH_MM / pixel[1])), 1)
    for k in range(bone.shape[0]):
        if not spine.found(k):
            continue
        top = max(int(round(fronts[k] + BODY_BAND_MM[0] / pixel[0])), 0)
        bottom = max(int(round(fronts[k] + BODY_BAND_MM[1] / pixel[0])) + 1, 0)
        mid = int(round(spine.midline_col[k]))
        out[k] = not bone[k, top:bottom, max(mid - half, 0) : mid + half + 1].any()
    return out


def _arch_backs(spine: Spine, spacing: tuple[float, float, float]) -> NDArray[np.float64]:
    """Per slice, the row of the back of the vertebral arch (the spinous process), also where
    the slice shows the body alone.

    Between two arches a slice may hold the vertebral body and no arch: its section ends at
    the body's back, an arch's depth (``ARCH_BEHIND_BODY_MM`` or more) in front of the backs
    of the slices within ``DISC_MM``, and takes their median. (The canal, half way between
    the body's front and the arch's back, was otherwise put inside the body, and a kidney
    lying beside it counted as lying behind the canal, where the quadratus lumborum is.)
    """
    return _row_from_neighbours(spine.back_row, -1, spacing)


def _body_half_width(
    vertebra: Mask,
    front: float,
    midline: float,
    origin: tuple[int, int],
    pixel: tuple[float, float],
) -> float:
    """Half the width (mm) of the vertebral body, about the midline (``front``: its row).

    Measured on the front of the body (``BODY_BAND_MM`` behind its anterior surface), in
    front of the pedicles and the transverse processes.
    """
    top = max(int(round(front - origin[0] + BODY_BAND_MM[0] / pixel[0])), 0)
    bottom = max(int(round(front - origin[0] + BODY_BAND_MM[1] / pixel[0])) + 1, 0)
    cols = np.nonzero(vertebra[top:bottom].any(axis=0))[0]
    if cols.size == 0:
        return 0.0
    return float(np.max(np.abs(cols - (midline - origin[1])))) * pixel[1]
