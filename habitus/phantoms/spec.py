"""What a phantom looks like (anatomy) and how it was scanned (acquisition), drawn from a seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ArmPose = Literal["down", "up"]
Contrast = Literal["none", "venous", "arterial"]
Sex = Literal["M", "F"]


@dataclass(frozen=True)
class PhantomSpec:
    """The body: size, habitus and the variations a scanner sees between patients."""

    seed: int
    height_mm: float  # vertex to sole
    bmi: float  # about 15 (cachectic) to 40 (obese)
    sex: Sex
    arms: ArmPose
    muscle_scale: float  # muscle thickness relative to an average adult (sarcopenia < 1)
    visceral_share: float  # 0: fat mostly subcutaneous, 1: mostly visceral
    contrast: Contrast  # intravenous contrast phase
    marrow_age: float  # 0 young (red marrow), 1 old (fatty marrow, lower HU)
    myosteatosis: float  # 0 lean muscle HU, 1 fatty muscle (lower HU, more marbling)

    @property
    def fat_level(self) -> float:
        """0 for BMI 15, 1 for BMI 40."""
        return float(np.clip((self.bmi - 15.0) / 25.0, 0.0, 1.0))

    @property
    def sf_thickness_mm(self) -> float:
        """Subcutaneous fat thickness over the abdomen."""
        return 3.0 + 42.0 * self.fat_level * (1.15 - 0.6 * self.visceral_share)

    @property
    def visceral_level(self) -> float:
        """How much the abdominal cavity fills with fat (0 none, about 1.2 at most)."""
        return self.fat_level * (0.25 + 1.0 * self.visceral_share)


@dataclass(frozen=True)
class Acquisition:
    """The scan: grid, craniocaudal range, field of view and image quality."""

    spacing_mm: tuple[float, float, float]  # (slice interval, row, column)
    slice_thickness_mm: float
    u_range: tuple[float, float]  # craniocaudal range as fractions of height below the vertex
    fov_mm: float  # side of the square reconstruction field
    fov_circle: bool  # pad outside the inscribed circle, as most scanners do
    pad_hu: int  # value written outside the reconstruction circle
    noise_hu: float  # standard deviation of the image noise
    blur_mm: float  # in-plane point spread (Gaussian sigma)
    table: bool  # draw the couch and mattress
    fov_shift_mm: tuple[float, float] = (0.0, 0.0)  # (y, x) shift of the field centre


# Craniocaudal ranges a body-composition scan typically covers (fractions of height).
SCAN_RANGES: dict[str, tuple[float, float]] = {
    "whole_body": (0.0, 1.0),
    "vertex_to_thigh": (0.0, 0.62),
    "neck_to_pelvis": (0.13, 0.55),
    "chest_abdomen_pelvis": (0.16, 0.53),
    "abdomen_pelvis": (0.26, 0.53),
    "upper_abdomen": (0.25, 0.42),
    "chest": (0.15, 0.34),
}


def random_spec(seed: int) -> PhantomSpec:
    """A plausible adult drawn from ``seed``; the same seed gives the same body."""
    rng = np.random.default_rng(seed)
    sex: Sex = "M" if rng.random() < 0.5 else "F"
    height = rng.normal(1760.0 if sex == "M" else 1630.0, 70.0)
    return PhantomSpec(
        seed=seed,
        height_mm=float(np.clip(height, 1480.0, 1980.0)),
        bmi=float(rng.uniform(15.0, 40.0)),
        sex=sex,
        arms="up" if rng.random() < 0.4 else "down",
        muscle_scale=float(rng.uniform(0.7, 1.25)),
        visceral_share=float(rng.uniform(0.1, 0.9) if sex == "M" else rng.uniform(0.05, 0.6)),
        contrast=("none", "venous", "arterial")[int(rng.choice(3, p=[0.5, 0.35, 0.15]))],
        marrow_age=float(rng.uniform(0.0, 1.0)),
        myosteatosis=float(rng.uniform(0.0, 1.0)),
    )


def random_acquisition(
    seed: int,
    spacing_mm: tuple[float, float, float] | None = None,
    scan_range: str | None = None,
) -> Acquisition:
    """A scan protocol drawn from ``seed``; a fixed ``spacing_mm`` or range overrides the draw."""
    rng = np.random.default_rng(seed + 7_919)
    thickness = float(rng.choice([1.0, 1.25, 2.0, 2.5, 3.0, 5.0]))
    if spacing_mm is None:
        pixel = float(rng.uniform(0.7, 1.0))
        spacing_mm = (thickness * float(rng.choice([0.8, 1.0])), pixel, pixel)
    if scan_range is None:
        names = list(SCAN_RANGES)
        scan_range = names[int(rng.integers(len(names)))]
    lo, hi = SCAN_RANGES[scan_range]
    jitter = rng.uniform(-0.03, 0.03, size=2)
    return Acquisition(
        spacing_mm=spacing_mm,
        slice_thickness_mm=thickness,
        u_range=(max(lo + float(jitter[0]), -0.05), min(hi + float(jitter[1]), 1.0)),
        fov_mm=float(rng.choice([360.0, 420.0, 500.0, 500.0, 550.0])),
        fov_circle=bool(rng.random() < 0.8),
        pad_hu=int(rng.choice([-1024, -2048, -3024])),
        noise_hu=float(rng.uniform(3.0, 30.0)),
        blur_mm=float(rng.uniform(0.4, 1.2)),
        table=bool(rng.random() < 0.9),
        fov_shift_mm=(float(rng.uniform(-20, 20)), float(rng.uniform(-15, 15))),
    )
