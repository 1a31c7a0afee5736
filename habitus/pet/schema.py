"""The PET part of the report: ``Report.pet``.

Uptake figures are SUVbw in g/ml (UCUM ``{SUVbw}g/ml``); SUL in g/ml of lean body mass.
A PET that was not found, or whose headers do not allow an SUV by the book, leaves
``analysed`` false with the reason; the CT results are delivered either way.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

PET_SECTION_VERSION = "1.0.0"
SUV_UNIT = "{SUVbw}g/ml"  # UCUM
SUL_UNIT = "{SUL}g/ml"
RegionName = Literal["scan", "torso", "waist", "l3"]


class PetSeries(BaseModel):
    """A PET series of the study, as the PET finder saw it."""

    series_instance_uid: str
    series_number: int | None = None
    description: str = ""
    instances: int = 0
    corrected_image: list[str] = Field(default_factory=list)
    units: str = ""
    same_frame_of_reference: bool = False
    overlap_mm: float = 0.0  # craniocaudal overlap with the CT's volume
    accepted: bool = False
    reasons: list[str] = Field(default_factory=list)  # why refused, or why chosen


class SuvCalibration(BaseModel):
    """What turned the PET's pixel values into SUVs, with the values read."""

    units: str  # Units (0054,1001): BQML or CNTS
    decay_correction: str  # START or ADMIN (BQML)
    formula: str
    radionuclide: str = ""
    injected_dose_mbq: float | None = None
    half_life_s: float | None = None
    injection_time: str | None = None  # ISO 8601, as read
    injection_time_source: str = ""
    scan_time: str | None = None  # ISO 8601: the time the images are decay corrected to
    decay_time_s: float | None = None  # scan time - injection time
    decayed_dose_mbq: float | None = None
    weight_kg: float | None = None
    weight_source: str = ""
    lean_body_mass_kg: float | None = None  # Janmahasatian; None without height and sex
    sul_formula: str | None = None
    missing: dict[str, str] = Field(default_factory=dict)  # why lean_body_mass_kg is null


class TissueMethod(BaseModel):
    """How the label map was brought to the PET grid and what the figures mean."""

    grid: str = (
        "CT labels taken to the PET grid: each PET voxel is assigned the class that covers at "
        "least min_fraction of its volume, PET values are never interpolated"
    )
    erosion_mm: float
    min_fraction: float
    peak_sphere_cm3: float = 1.0
    peak: str = (
        "SUVpeak: the highest mean over a 1 cm3 sphere (PET voxels whose centres lie within "
        "6.2 mm) centred on a voxel of the class"
    )
    torso: str = "the torso's craniocaudal range, arms and legs within it included"


class TissueUptake(BaseModel):
    label: int
    name: str
    voxels: int  # PET voxels measured
    volume_cm3: float  # their volume
    suv_mean: float | None = None
    suv_max: float | None = None
    suv_peak: float | None = None
    sul_mean: float | None = None  # None without lean body mass


class RegionUptake(BaseModel):
    name: RegionName
    available: bool
    reason: str | None = None
    z_mm: tuple[float, float] | None = None  # (inferior, superior) PET voxel centres taken
    pet_slices: tuple[int, int] | None = None  # (lowest k, highest k) of the PET volume
    classes: list[TissueUptake] = Field(default_factory=list)


class LiverReference(BaseModel):
    available: bool
    reason: str | None = None
    suv_mean: float | None = None


class PetSection(BaseModel):
    version: str = PET_SECTION_VERSION
    found: bool  # a qualifying PET series is in the study
    analysed: bool  # SUVs were measured
    reason: str | None = None  # why not found or not analysed
    refusal: str | None = None  # the named reason a PET was refused, e.g. "dose_missing"
    chosen_series: PetSeries | None = None
    other_series: list[PetSeries] = Field(default_factory=list)
    unit: str = SUV_UNIT
    calibration: SuvCalibration | None = None
    method: TissueMethod | None = None
    regions: list[RegionUptake] = Field(default_factory=list)
    liver_reference: LiverReference | None = None
    warnings: list[str] = Field(default_factory=list)
