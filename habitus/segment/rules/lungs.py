"""Lungs and airways (background by definition), and the thorax above the diaphragm.

Air inside the trunk falls into 3D pieces: the lungs with the bronchi and trachea, and gas in
the stomach and bowel. Aerated lung is not pure air: with its vessels and septa it is denser
(median about -800 HU over its voxels below -600 HU) than gas in a bowel loop (below
-940 HU), which tells them apart even for the thin lung bases at the top of an abdominal
scan. Very large pieces are lung however
dark they are (emphysema). The lungs then take in their partial-volume rim and vessels.

The thorax is what the lungs enclose, slice by slice: each lung, and between the two lungs
(the mediastinum, the heart) once both are large. Slices above the top of the lungs
(neck, head) count as thorax too; with no lungs in the scan, nothing does.
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
MIN_LUNG_SECTION_MM2 = 100.0  # lung sections smaller than this do not shape the thorax
MEDIASTINUM_LUNG_MM2 = 3000.0  # both lungs this large in a slice: the heart lies between
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
    return LungMasks(lungs=lungs, thorax=_thorax(lungs, torso, spacing))


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
    for k in slices:
        hulls[k] = _slice_hull(sections[k], pixel_mm2)
    thorax = grid.expand(hulls).astype(bool) & torso
    thorax[slices.max() + 1 :] = torso[slices.max() + 1 :]
    return thorax


def _slice_hull(sections: NDArray[np.int32], pixel_mm2: float) -> Mask:
    """Each lung section of a slice with its vessels and the recesses between its lobes,
    and the hull of both lungs together once both are large (the heart between them).

    A lung base is a crescent around the dome of the liver or spleen: its convex hull would
    take in the abdomen below the dome, so single sections are only closed, not hulled.
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
    if len(big) >= 2:
        two_largest = sorted(big, key=lambda n: areas[n])[-2:]
        if min(areas[n] for n in two_largest) * pixel_mm2 >= MEDIASTINUM_LUNG_MM2:
            out |= convex_hull_image(np.isin(sections, two_largest))
    return out


def bowel_content(
    hu: NDArray[np.int16], viscera: Mask, spacing: tuple[float, float, float]
) -> Mask:
    """Voxels inside the wall close to gas: stool and the rim of gas pockets, not fat."""
    gas = viscera & (hu < FAT_HU[0])
    return dilate_2d(gas, BOWEL_CONTENT_MM, (spacing[1], spacing[2]), within=viscera)
