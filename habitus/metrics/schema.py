"""The body-composition result: pydantic models, serialised into ``Report.body_composition``.

Conventions: slice indices are those of the analysed volume (k); a slice range is given as
(lowest k, highest k) whichever way the slices run; z is LPS (head positive), ranges as
(inferior, superior). For DICOM input the end slices of a range and the L3 slice also name
their source instance (InstanceNumber, SOPInstanceUID), which is what a viewer shows. Every
number that could not be computed is null, and the model's ``missing`` maps the field name to
the reason. Units are in the field names; the flat list of :class:`NamedMeasurement` carries
them as UCUM codes for the DICOM SR (built by ``habitus.metrics.measurements``, which imports
these models; this module imports nothing of it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from habitus.anatomy.schema import Landmark, LandmarkName, Landmarks, Vertebra
from habitus.metrics.contrast import ContrastAssessment, ContrastEvidence, ContrastPhase

BODY_COMPOSITION_VERSION = "1.2.0"  # 1.1: source instances of the measured slices; 1.2: contrast
CUTOFF_SOURCE = (
    "Lee et al., Deep neural network for automatic volumetric segmentation of whole-body CT "
    "images for body composition assessment, Clinical Nutrition 2021"
)

__all__ = [
    "BODY_COMPOSITION_VERSION",
    "CUTOFF_SOURCE",
    "BodyComposition",
    "ClassMeasurement",
    "ContrastAssessment",
    "ContrastEvidence",
    "ContrastPhase",
    "Flag",
    "Flags",
    "L3Metrics",
    "Landmark",
    "LandmarkName",
    "Landmarks",
    "NamedMeasurement",
    "PatientInfo",
    "Quality",
    "QualityCheck",
    "Regions",
    "SliceRange",
    "SourceInstance",
    "TorsoMetrics",
    "Vertebra",
    "WaistMetrics",
]


class ClassMeasurement(BaseModel):
    label: int
    name: str
    voxels: int
    volume_cm3: float
    mean_hu: float | None  # None when the class is absent


class PatientInfo(BaseModel):
    """Anthropometrics used for indices; ``source`` says where each came from."""

    height_cm: float | None = None
    weight_kg: float | None = None
    sex: Literal["M", "F"] | None = None
    source: dict[str, str] = Field(default_factory=dict)  # e.g. {"height_cm": "caller"}
    warnings: list[str] = Field(default_factory=list)  # header values that were ignored
    missing: dict[str, str] = Field(default_factory=dict)  # why height_cm or weight_kg is null


class SourceInstance(BaseModel):
    """The DICOM instance a slice of the analysed volume was read from."""

    instance_number: int | None  # InstanceNumber (0020,0013); None when the header has none
    sop_instance_uid: str
    z_mm: float  # LPS z of the slice, mm


class SliceRange(BaseModel):
    """A contiguous run of slices of the analysed volume."""

    first_slice: int  # lowest k
    last_slice: int  # highest k
    slices: int
    z_mm: tuple[float, float]  # (inferior z, superior z) of the end slices' centres
    first_instance: SourceInstance | None = None  # of first_slice; None for NIfTI input
    last_instance: SourceInstance | None = None  # of last_slice; None for NIfTI input


class WaistMetrics(BaseModel):
    """The waist: from the lower margin of the last rib down to the upper margin of the
    iliac crest, both landmark slices included, arms excluded."""

    available: bool
    reason: str | None = None  # why the waist could not be measured
    range: SliceRange | None = None
    length_cm: float | None = None  # slices x slice interval
    muscle_cm3: float | None = None
    fat_cm3: float | None = None  # abdominal visceral + subcutaneous fat
    visceral_fat_cm3: float | None = None
    subcutaneous_fat_cm3: float | None = None
    average_sma_cm2: float | None = None  # muscle volume / waist length
    average_bfa_cm2: float | None = None  # fat volume / waist length
    smi_cm2_m2: float | None = None  # average SMA / height^2
    bfi_cm2_kg: float | None = None  # average BFA / weight
    muscle_mean_hu: float | None = None
    missing: dict[str, str] = Field(default_factory=dict)


class TorsoMetrics(BaseModel):
    """The torso: the body without arms and legs, between the limits stated here."""

    complete: bool  # both limits are anatomical landmarks inside the scan
    range: SliceRange | None = None
    top_limit: str = ""  # what the top of the range is: a landmark or the scan's edge
    bottom_limit: str = ""
    classes: list[ClassMeasurement] = Field(default_factory=list)  # within the torso range
    muscle_cm3: float | None = None
    fat_cm3: float | None = None  # abdominal visceral + subcutaneous fat
    smi_cm3_m2: float | None = None  # torso muscle volume / height^2
    bfi_cm3_kg: float | None = None  # torso fat volume / weight
    missing: dict[str, str] = Field(default_factory=dict)


class L3Metrics(BaseModel):
    """Single-slice areas on the slice nearest the middle of the L3 vertebral body."""

    available: bool
    reason: str | None = None
    slice_index: int | None = None
    z_mm: float | None = None
    instance: SourceInstance | None = None  # the slice's source instance; None for NIfTI input
    sma_cm2: float | None = None  # skeletal muscle area
    vat_cm2: float | None = None  # visceral adipose tissue (AVF class)
    sat_cm2: float | None = None  # subcutaneous adipose tissue (SF class)
    vat_sat_ratio: float | None = None
    muscle_mean_hu: float | None = None  # myosteatosis marker
    smi_cm2_m2: float | None = None  # L3 SMA / height^2; no cut-off applied
    missing: dict[str, str] = Field(default_factory=dict)


class Flag(BaseModel):
    """A cut-off applied to an index, with the cut-offs written out."""

    name: Literal["low_smi", "high_bfi"]
    value: bool | None  # None when the index or the patient's sex is unknown
    index: str  # the field compared, e.g. "waist.smi_cm2_m2"
    measured: float | None = None  # the index as reported, at its precision; the flag's input
    unit: str
    comparison: Literal["<", ">"]
    cutoff: float | None = None  # the one applied, for the patient's sex
    cutoffs: dict[str, float]  # by sex: {"M": ..., "F": ...}
    sex: Literal["M", "F"] | None = None
    source: str = CUTOFF_SOURCE
    reason: str | None = None  # why value is None


class Flags(BaseModel):
    low_smi: Flag
    high_bfi: Flag


class QualityCheck(BaseModel):
    name: str
    status: Literal["pass", "warn", "not_applicable"]
    message: str
    value: float | None = None  # the measured quantity the check looked at
    threshold: str | None = None  # the rule, in words with its numbers


class Quality(BaseModel):
    checks: list[QualityCheck] = Field(default_factory=list)
    review_required: bool = False
    review_reasons: list[str] = Field(default_factory=list)


class Regions(BaseModel):
    """Where the measurements were taken, for the preview images."""

    waist: SliceRange | None = None
    l3_slice: int | None = None
    torso: SliceRange | None = None
    last_rib_slice: int | None = None
    iliac_crest_slice: int | None = None


class NamedMeasurement(BaseModel):
    """One number for the DICOM SR: a stable key, a label, a UCUM unit and its slices."""

    key: str  # e.g. "waist.average_sma"
    label: str  # e.g. "Average skeletal muscle area in the waist"
    value: float
    unit: str  # UCUM code, e.g. "cm2", "cm2/m2", "[hnsf'U]"
    group: Literal["waist", "torso", "l3"]
    slices: tuple[int, int]  # (lowest k, highest k) the measurement covers


class BodyComposition(BaseModel):
    version: str = BODY_COMPOSITION_VERSION
    landmarks: Landmarks
    regions: Regions
    waist: WaistMetrics
    torso: TorsoMetrics
    l3: L3Metrics
    flags: Flags
    quality: Quality
    contrast: ContrastAssessment | None = None  # phase and evidence; None in reports before 1.2
    summary_lines: list[str] = Field(default_factory=list)  # short lines for the CLI
