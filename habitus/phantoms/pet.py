"""Synthetic PET of known uptake per tissue, for tests and demonstrations: the truth that a
PET header states (``PetHeader``) and the images that hold it (``pet_image``).

Activity is painted per class of a CT label map at a chosen SUVbw, blurred by the scanner's
resolution (Gaussian, ``fwhm_mm``) on the CT grid, averaged into PET voxels of a whole number
of CT voxels and given multiplicative noise. ``habitus.phantoms.write_dicom`` writes it as PET
Image Storage with the radiopharmaceutical, decay and units attributes the SUV calculation
reads (``write_series(..., pet=header)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from habitus.labels import Tissue
from habitus.pet.suv import decayed_dose
from habitus.volume import Geometry

F18_HALF_LIFE_S = 6586.2
TRUE_DOSE_BQ = 370.0e6
TRUE_WEIGHT_KG = 75.0
SCAN_TIME = datetime(2024, 1, 1, 12, 0, 0)  # study, series and acquisition start of every phantom

# Typical FDG uptake (SUVbw) of the classes in a fasting adult.
TYPICAL_SUV: dict[Tissue, float] = {
    Tissue.SKIN: 0.8,
    Tissue.BONE: 1.6,
    Tissue.MUSCLE: 0.9,
    Tissue.AVF: 0.4,
    Tissue.SF: 0.3,
    Tissue.IO: 2.2,
    Tissue.CNS: 6.0,
}


@dataclass(frozen=True)
class PetHeader:
    """The header values that decide the SUV; None leaves the attribute out."""

    units: str = "BQML"
    decay_correction: str = "START"
    corrected_image: tuple[str, ...] = ("ATTN", "DECY", "SCAT", "RAN")
    dose_bq: float | None = TRUE_DOSE_BQ
    half_life_s: float | None = F18_HALF_LIFE_S
    uptake_s: float = 3600.0  # injection to scan start
    injection_as_datetime: bool = True  # RadiopharmaceuticalStartDateTime, else StartTime
    weight_kg: float | None = TRUE_WEIGHT_KG
    height_m: float | None = 1.75
    sex: str = "M"
    philips_suv_factor: float | None = None  # with units CNTS: SUVbw per count

    @property
    def injection_time(self) -> datetime:
        return SCAN_TIME - timedelta(seconds=self.uptake_s)

    def bq_ml_per_suv(self) -> float:
        """Activity concentration (Bq/ml) the images hold for an SUVbw of 1.

        A header that leaves the dose, weight or half-life out still gets images made with
        the defaults (the truth the header fails to state)."""
        injected = self.dose_bq or TRUE_DOSE_BQ
        half_life = self.half_life_s or F18_HALF_LIFE_S
        dose = (
            injected
            if self.decay_correction == "ADMIN"
            else decayed_dose(injected, self.uptake_s, half_life)
        )
        return dose / ((self.weight_kg or TRUE_WEIGHT_KG) * 1000.0)


def pet_image(
    labels: NDArray[np.uint8],
    ct: Geometry,
    suv: Mapping[Tissue, float],
    *,
    per_unit: float,
    factor: tuple[int, int, int] = (2, 2, 2),
    fwhm_mm: float = 6.0,
    noise: float = 0.06,
    seed: int = 0,
) -> tuple[NDArray[np.float32], Geometry]:
    """Pixel values (``per_unit`` per SUV) on a PET grid ``factor`` times coarser than the CT."""
    from scipy import ndimage

    lut = np.zeros(len(Tissue), dtype=np.float32)
    for tissue, value in suv.items():
        lut[int(tissue)] = value * per_unit
    activity = lut[labels]
    # Noise before the blur: reconstructed PET noise is correlated over the resolution.
    rng = np.random.default_rng(seed)
    activity *= rng.normal(1.0, noise, size=activity.shape).astype(np.float32)
    sigma = [fwhm_mm / 2.3548 / s for s in ct.spacing]
    activity = ndimage.gaussian_filter(activity, sigma, mode="nearest")
    fk, fj, fi = factor
    nk, nj, ni = (n // f for n, f in zip(labels.shape, factor, strict=True))
    blocks = activity[: nk * fk, : nj * fj, : ni * fi].reshape(nk, fk, nj, fj, ni, fi)
    pet = blocks.mean(axis=(1, 3, 5))
    spacing = (ct.spacing[0] * fk, ct.spacing[1] * fj, ct.spacing[2] * fi)
    # The PET voxel centre is the centre of its block of CT voxels.
    shift = np.asarray([(f - 1) / 2.0 * s for f, s in zip(factor, ct.spacing, strict=True)])
    origin = np.asarray(ct.origin) + ct.matrix @ shift
    corner = (float(origin[0]), float(origin[1]), float(origin[2]))
    geometry = Geometry(spacing, corner, ct.direction)
    return np.clip(pet, 0.0, None).astype(np.float32), geometry
