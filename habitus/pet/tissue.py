"""Uptake per tissue: the CT label map taken to the PET grid, then SUV statistics per class.

Why labels to the PET grid and not the PET to the CT grid: PET voxels (4 mm or more) are
several times larger than CT voxels, so resampling the PET would interpolate values that were
never measured and spread each voxel's partial volume over many CT voxels. Taking the labels to
the PET grid keeps every PET value as measured and asks, per PET voxel, how much of it each
class fills.

Spill-over: the PET's resolution (5 to 7 mm FWHM) mixes the uptake of neighbours (bladder,
myocardium, kidneys, organs next to thin fat and muscle). Each class is first eroded on the
CT grid by ``erosion_mm`` (a ball in millimetres), then a PET voxel counts for a class when
that class's eroded core fills at least ``min_fraction`` of it. ``min_fraction`` is at least
one half, so a PET voxel belongs to at most one class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.labels import TISSUE_CLASSES, Tissue
from habitus.pet.schema import TissueUptake
from habitus.pet.suv import PetRefused
from habitus.volume import Geometry

DEFAULT_EROSION_MM = 6.0  # about one FWHM of a clinical PET reconstruction
DEFAULT_MIN_FRACTION = 0.9
PEAK_SPHERE_ML = 1.0
PEAK_RADIUS_MM = (3.0 * PEAK_SPHERE_ML * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)  # 6.20 mm
NUM_LABELS = len(Tissue)


@dataclass(frozen=True)
class PetGrid:
    shape: tuple[int, int, int]
    geometry: Geometry

    @property
    def voxel_ml(self) -> float:
        return self.geometry.voxel_volume_mm3 / 1000.0


def ball(radius_mm: float, spacing: tuple[float, float, float]) -> NDArray[np.bool_]:
    """The voxel offsets whose centres lie within ``radius_mm`` of the centre, as a mask."""
    reach = [int(radius_mm // s) for s in spacing]
    axes = [np.arange(-r, r + 1) * s for r, s in zip(reach, spacing, strict=True)]
    k, j, i = np.meshgrid(*axes, indexing="ij")
    return np.asarray(k**2 + j**2 + i**2 <= radius_mm**2 + 1e-9)


def erode_labels(
    labels: NDArray[np.uint8], spacing: tuple[float, float, float], erosion_mm: float
) -> NDArray[np.uint8]:
    """Each class kept only where a ball of ``erosion_mm`` around the voxel is all that class."""
    if erosion_mm <= 0:
        return labels.copy()
    structure = ball(erosion_mm, spacing)
    pad = [s // 2 for s in structure.shape]
    eroded = np.zeros_like(labels)
    for value, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        padded = tuple(
            slice(max(b.start - p, 0), min(b.stop + p, n))
            for b, p, n in zip(box, pad, labels.shape, strict=True)
        )
        core = ndimage.binary_erosion(labels[padded] == value, structure=structure)
        eroded[padded][core] = value
    return eroded


def labels_on_pet_grid(
    labels: NDArray[np.uint8],
    ct: Geometry,
    pet: PetGrid,
    *,
    erosion_mm: float = DEFAULT_EROSION_MM,
    min_fraction: float = DEFAULT_MIN_FRACTION,
) -> NDArray[np.uint8]:
    """The class of each PET voxel (0: none): the eroded class filling ``min_fraction`` of it.

    Fractions count CT voxel centres: each CT voxel falls in the PET voxel that holds its
    centre, and the count is set against how many CT voxels fit in a PET voxel, so PET voxels
    only partly covered by the CT count less. CT much finer than the PET is sampled first
    (every n-th voxel, at least two per PET voxel along each axis).
    """
    if not 0.5 <= min_fraction <= 1.0:
        raise ValueError(f"min_fraction must be within 0.5-1, not {min_fraction}")
    labels, ct = _thinned(labels, ct, min(pet.geometry.spacing))
    eroded = erode_labels(labels, ct.spacing, erosion_mm)
    per_pet_voxel = pet.geometry.voxel_volume_mm3 / ct.voxel_volume_mm3
    if per_pet_voxel > np.iinfo(np.uint16).max / 2:
        raise PetRefused(
            "grid_mismatch",
            f"{per_pet_voxel:.0f} CT voxels per PET voxel: expected PET voxels of a few CT voxels",
        )
    to_pet = np.linalg.inv(pet.geometry.affine) @ ct.affine
    lo, size = _pet_box(to_pet, labels.shape, pet.shape)
    classes = np.zeros(pet.shape, dtype=np.uint8)
    if min(size) <= 0:
        return classes  # the CT and the PET do not overlap
    nk, nj, ni = size
    # Counts are kept only for the PET voxels the CT reaches, so memory follows the CT's extent.
    counts = np.zeros((nk * nj * ni, NUM_LABELS), dtype=np.uint16)
    flat_counts = counts.reshape(-1)
    j_term = to_pet[:3, 1][np.newaxis, :] * np.arange(labels.shape[1])[:, np.newaxis]
    i_term = to_pet[:3, 2][np.newaxis, :] * np.arange(labels.shape[2])[:, np.newaxis]
    for k in range(labels.shape[0]):
        tissue = eroded[k]
        if not tissue.any():
            continue
        base = to_pet[:3, 0] * k + to_pet[:3, 3] - lo
        index = [
            np.rint(base[a] + j_term[:, a, np.newaxis] + i_term[np.newaxis, :, a]).astype(np.int64)
            for a in range(3)
        ]
        inside = (
            (tissue > 0)
            & (index[0] >= 0)
            & (index[0] < nk)
            & (index[1] >= 0)
            & (index[1] < nj)
            & (index[2] >= 0)
            & (index[2] < ni)
        )
        if not inside.any():
            continue
        flat = ((index[0][inside] * nj + index[1][inside]) * ni + index[2][inside]) * NUM_LABELS
        flat += tissue[inside]
        start = int(flat.min())
        tally = np.bincount(flat - start)
        flat_counts[start : start + tally.size] += tally.astype(np.uint16)
    needed = min_fraction * per_pet_voxel
    best = np.argmax(counts, axis=1)
    enough = counts[np.arange(counts.shape[0]), best] >= needed
    box = tuple(slice(int(a), int(a + n)) for a, n in zip(lo, size, strict=True))
    classes[box] = np.where(enough & (best > 0), best, 0).astype(np.uint8).reshape(size)
    return classes


def _thinned(
    labels: NDArray[np.uint8], ct: Geometry, pet_spacing: float
) -> tuple[NDArray[np.uint8], Geometry]:
    """Every n-th CT voxel along each axis, n such that at least two remain per PET voxel.

    Thin-slice CT (0.8 mm pixels) against 4 mm PET voxels holds 25 and more CT voxels per PET
    voxel; a sample of them gives the same fractions for a fraction of the erosion's work.
    """
    steps = [max(1, int(pet_spacing / 2.0 / s)) for s in ct.spacing]
    if steps == [1, 1, 1]:
        return labels, ct
    spacing = (ct.spacing[0] * steps[0], ct.spacing[1] * steps[1], ct.spacing[2] * steps[2])
    sample = labels[:: steps[0], :: steps[1], :: steps[2]]
    return np.ascontiguousarray(sample), Geometry(spacing, ct.origin, ct.direction)


def _pet_box(
    to_pet: NDArray[np.float64], ct_shape: tuple[int, ...], pet_shape: tuple[int, int, int]
) -> tuple[NDArray[np.int64], tuple[int, int, int]]:
    """The first PET index and the size of the PET box that CT voxel centres fall into."""
    corners = np.array(
        [
            [k, j, i, 1.0]
            for k in (0, ct_shape[0] - 1)
            for j in (0, ct_shape[1] - 1)
            for i in (0, ct_shape[2] - 1)
        ]
    )
    reach = (to_pet @ corners.T)[:3]
    lo = np.maximum(np.floor(reach.min(axis=1)).astype(np.int64) - 1, 0)
    hi = np.minimum(np.ceil(reach.max(axis=1)).astype(np.int64) + 2, np.asarray(pet_shape))
    size = hi - lo
    return lo, (int(size[0]), int(size[1]), int(size[2]))


def peak_map(suv: NDArray[np.float32], spacing: tuple[float, float, float]) -> NDArray[np.float32]:
    """The mean SUV over a 1 cm3 sphere centred on every voxel."""
    sphere = ball(PEAK_RADIUS_MM, spacing).astype(np.float32)
    sphere /= sphere.sum()
    return np.asarray(ndimage.correlate(suv, sphere, mode="nearest"), dtype=np.float32)


def tissue_uptake(
    suv: NDArray[np.float32],
    peaks: NDArray[np.float32],
    classes: NDArray[np.uint8],
    within: NDArray[np.bool_],
    voxel_ml: float,
) -> list[TissueUptake]:
    """SUVmean, SUVmax, SUVpeak and measured volume of each class inside ``within``."""
    rows: list[TissueUptake] = []
    for tissue in TISSUE_CLASSES:
        mask = within & (classes == tissue)
        n = int(mask.sum())
        row = TissueUptake(
            label=int(tissue),
            name=tissue.display_name,
            voxels=n,
            volume_cm3=round(n * voxel_ml, 2),
        )
        if n:
            values = suv[mask]
            row.suv_mean = round(float(values.mean()), 3)
            row.suv_max = round(float(values.max()), 3)
            row.suv_peak = round(float(peaks[mask].max()), 3)
        rows.append(row)
    return rows
