"""Lungs and airways (background by definition), and the thorax above the diaphragm.

Air inside the trunk falls into 3D pieces: the lungs with the bronchi and trachea, and gas in
the stomach and bowel. Aerated lung is not pure air: with its vessels and septa it is denser
(median about -800 HU over its voxels below -600 HU) than gas in a bowel loop (below
-940 HU), which tells them apart even for the thin lung bases at the top of an abdominal
scan. Very large pieces are lung however
dark they are (emphysema). The lungs then take in their partial-volume rim and vessels.

The thorax is what lies above the diaphragm. The lungs rest on it, so it is traced from
below the lungs: in every front-back and left-right column of voxels the diaphragm lies
just under the lowest lung voxel, and across the mediastinum (the heart, the aorta and the
oesophagus between the lungs) it is interpolated from left to right between the two lungs'
lowest voxels in each row. Pericardial fat and the fat of the cardiophrenic angles, under
lung bases too small to enclose the heart, and the retrocrural fat above the aortic hiatus
are therefore thorax: their fat is intrathoracic (subcutaneous by definition), never
visceral. Besides, every slice takes each lung with its vessels and the recesses between its
lobes, and between the two lungs once both are large. Slices above the top of the lungs
(neck, head) count as thorax too; with no lungs in the scan, nothing does. Nothing is
extrapolated beyond the lungs' outline, so a scan that starts at the lung bases keeps the
abdomen in front of and beside them. Two things complete it: whatever touches a lung (its
surface blurred to fat attenuation against the diaphragm or an organ), and every piece of
fat, within its slice, that lies mostly in the thorax (pericardial fat that the traced
floor cuts across under and in front of the heart; see :func:`with_enclosed_fat`).

Shaped on: the complaint of a contrast chest CT (fat above the liver dome, mediastinal and
pericardial, labelled visceral), ts-upper-abdomen (lung bases at T11-T12, where the
thorax must stop at the bases) and the phantoms of habitus.phantoms (pericardial fat in
front of and under the heart, lung edges at fat attenuation: 16-135 voxels above their
diaphragm labelled visceral per phantom before the last two rules).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.morphology import convex_hull_image

from habitus.labels import FAT_HU
from habitus.segment.rules.coarse import CoarseGrid
from habitus.segment.rules.morphology import IN_PLANE, Mask, dilate_2d, fill_holes_2d

AIR_HU = -400.0
LUNG_MAX_CORE_MEDIAN_HU = -920.0  # aerated lung is denser than gas in a bowel loop
CORE_HU = -600.0
LUNG_MIN_CM3 = 5.0
LUNG_ANY_DENSITY_CM3 = 1000.0  # no bowel gas pocket is this large
LUNG_RIM_HU = -300.0  # partial-volume rim of the lung surface taken in
LUNG_RIM_MM = 2.0
LUNG_SURFACE_MM = 2.0  # thinner than the diaphragm: what lies this close to a lung is thorax
MIN_LUNG_SECTION_MM2 = 100.0  # lung sections smaller than this do not shape the thorax
MEDIASTINUM_LUNG_MM2 = 3000.0  # both lungs this large in a slice: the heart lies between
DIAPHRAGM_MM = 3.0  # under the lowest lung voxel: diaphragm and partial volume, not AVF
MIN_SOLIDITY = 0.5  # ... unless either is a crescent round a dome (ts-upper-abdomen: 0.24-0.41)
LUNG_SECTION_CLOSING_MM = 10.0
BOWEL_CONTENT_MM = 3.0  # stool: fat-density material mottled with gas


@dataclass(frozen=True)
class LungMasks:
    lungs: Mask  # lungs and airways
    thorax: Mask  # above the diaphragm: fat inside the wall here is intrathoracic


def lung_masks(
    hu: NDArray[np.int16], torso: Mask, spacing: tuple[float, float, float]
) -> LungMasks:
    """Lungs and thorax of a canonical (superior, posterior, left) volume."""
    air = torso & (hu < AIR_HU)
    pieces, count = ndimage.label(air)
    lungs = np.zeros_like(air)
    if count:
        index = np.arange(1, count + 1)
        sizes_cm3 = np.bincount(pieces.ravel())[1:] * np.prod(spacing) / 1000.0
        # The median of the darker voxels: the partial-volume rim of a small gas pocket
        # would otherwise make it look as dense as lung.
        dark = air & (hu < CORE_HU)
        medians = np.asarray(ndimage.median(hu[dark], pieces[dark], index), dtype=np.float64)
        is_lung = (sizes_cm3 >= LUNG_MIN_CM3) & (
            (np.nan_to_num(medians, nan=0.0) < 0) & (medians > LUNG_MAX_CORE_MEDIAN_HU)
            | (sizes_cm3 >= LUNG_ANY_DENSITY_CM3)
        )
        lungs = np.isin(pieces, index[is_lung])
    if lungs.any():
        low = torso & (hu < LUNG_RIM_HU)
        rim = dilate_2d(lungs, LUNG_RIM_MM, (spacing[1], spacing[2]), within=low)
        lungs = fill_holes_2d(lungs | rim) & torso
    thorax = _thorax(lungs, torso, spacing)
    # The lung's surface blurs into what it touches (pleura, diaphragm, pericardium) at fat
    # attenuation; whatever touches a lung lies above the diaphragm.
    thorax |= dilate_2d(lungs, LUNG_SURFACE_MM, (spacing[1], spacing[2]), within=torso)
    return LungMasks(lungs=lungs, thorax=thorax)


def _thorax(lungs: Mask, torso: Mask, spacing: tuple[float, float, float]) -> Mask:
    thorax = np.zeros_like(lungs)
    slices = np.nonzero(lungs.any(axis=(1, 2)))[0]
    if slices.size == 0:
        return thorax
    grid = CoarseGrid.for_spacing(spacing, lungs.shape)
    coarse = grid.any(lungs)
    pixel_mm2 = grid.spacing(spacing)[1] * grid.spacing(spacing)[2]
    sections, _ = ndimage.label(coarse, structure=IN_PLANE)
    hulls = np.zeros_like(coarse)
    mediastinum = np.zeros(coarse.shape[1:], dtype=bool)
    for k in slices:
        hulls[k], between = _slice_hull(sections[k], pixel_mm2)
        mediastinum |= between
    diaphragm = max(1, int(round(DIAPHRAGM_MM / spacing[0])))
    above = _above_lung_bases(coarse, mediastinum, diaphragm)
    thorax = grid.expand(hulls | above).astype(bool) & torso
    thorax[slices.max() + 1 :] = torso[slices.max() + 1 :]
    return thorax


def _above_lung_bases(lungs: Mask, mediastinum: Mask, diaphragm: int) -> Mask:
    """Voxels at or above the diaphragm traced under the lungs (axis 0 towards the head).

    Each column with lung holds the diaphragm (``diaphragm`` slices thick, taken in with
    the lung's partial-volume edge, neither of them visceral fat) just under its lowest
    lung voxel. Columns of
    the mediastinum (``mediastinum``: between the two lungs where they enclose the heart)
    take the height interpolated from left to right between the nearest lung columns of
    their front-back row. Elsewhere nothing is interpolated: between the thin recesses that
    wrap round the liver and the stomach, the diaphragm rises as a dome, and a line drawn
    between the recesses would cut through the abdomen.
    """
    n = lungs.shape[0]
    has: Mask = np.asarray(lungs.any(axis=0))
    lowest = np.where(has, np.argmax(lungs, axis=0), n).astype(np.float64)
    floor = lowest.copy()
    for j in np.nonzero(has.any(axis=1) & mediastinum.any(axis=1))[0]:
        cols = np.nonzero(has[j])[0]
        span = np.arange(cols[0], cols[-1] + 1)
        between = span[mediastinum[j, span]]
        floor[j, between] = np.interp(between, cols, lowest[j, cols])
    z = np.arange(n, dtype=np.float64)[:, np.newaxis, np.newaxis]
    return np.asarray(z >= np.ceil(floor)[np.newaxis] - diaphragm - 1e-9)


def _slice_hull(sections: NDArray[np.int32], pixel_mm2: float) -> tuple[Mask, Mask]:
    """Each lung section of a slice with its vessels and the recesses between its lobes,
    and the hull of both lungs together once both are large (the heart between them); also
    that part between the lungs on its own.

    A lung base is a crescent around the dome of the liver or spleen: its convex hull would
    take in the abdomen below the dome, so single sections are only closed, not hulled, and
    two lungs enclose a mediastinum only where neither is a crescent (``MIN_SOLIDITY``: lung
    beside the heart fills most of its convex hull, a base round a dome a third of it).
    """
    out = np.zeros(sections.shape, dtype=bool)
    labels = np.unique(sections)
    labels = labels[labels > 0]
    areas = np.bincount(sections.ravel())
    big = [int(n) for n in labels if areas[n] * pixel_mm2 >= MIN_LUNG_SECTION_MM2]
    radius = max(1, int(round(LUNG_SECTION_CLOSING_MM / np.sqrt(pixel_mm2))))
    closing = ndimage.generate_binary_structure(2, 1)
    for n in big:
        out |= ndimage.binary_fill_holes(
            ndimage.binary_closing(sections == n, closing, iterations=radius, border_value=0)
        )
    between = np.zeros(sections.shape, dtype=bool)
    if len(big) >= 2:
        two_largest = sorted(big, key=lambda n: areas[n])[-2:]
        large = min(areas[n] for n in two_largest) * pixel_mm2 >= MEDIASTINUM_LUNG_MM2
        if large and all(_solidity(sections == n) >= MIN_SOLIDITY for n in two_largest):
            hull = convex_hull_image(np.isin(sections, two_largest))
            between = hull & ~out
            out |= hull
    return out, between


def _solidity(section: Mask) -> float:
    """Share of its convex hull that a section fills."""
    return float(section.sum()) / max(float(convex_hull_image(section).sum()), 1.0)


def with_enclosed_fat(thorax: Mask, fat: Mask) -> Mask:
    """The thorax with every piece of ``fat`` (face-connected within its slice) lying mostly
    in it.

    Pericardial and mediastinal fat wraps the heart as one piece in each slice. Where the
    floor traced under the lungs cuts across that piece (under the heart, in front of it
    below the lungs' anterior margins, beside a dome that rises higher than the heart's
    floor), the part left below the floor belongs with the rest: it is intrathoracic too.
    """
    pieces, count = ndimage.label(fat, structure=IN_PLANE)
    if count == 0:
        return thorax
    total = np.bincount(pieces.ravel(), minlength=count + 1)
    inside = np.bincount(pieces[thorax], minlength=count + 1)
    mostly = 2 * inside >= total
    mostly[0] = False
    return thorax | mostly[pieces]


def bowel_content(
    hu: NDArray[np.int16], viscera: Mask, spacing: tuple[float, float, float]
) -> Mask:
    """Voxels inside the wall close to gas: stool and the rim of gas pockets, not fat."""
    gas = viscera & (hu < FAT_HU[0])
    return dilate_2d(gas, BOWEL_CONTENT_MM, (spacing[1], spacing[2]), within=viscera)
