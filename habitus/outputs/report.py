"""The JSON report: a versioned pydantic schema.

The schema version follows semantic versioning: a new optional field bumps the minor
version, a removed or renamed field the major one. ``body_composition`` holds the analytics
(landmarks, waist, torso, L3, indices, flags, quality checks; habitus.metrics.schema).
ClassMeasurement and PatientInfo live with the metrics that compute them and are re-exported
here for readers of the report.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from habitus.metrics.schema import BodyComposition, ClassMeasurement, PatientInfo
from habitus.pet.schema import PetSection

# 1.1: typed body_composition; 1.2: source instances of slices, patient.missing;
# 1.3: body_composition.contrast (contrast phase and its evidence); 1.4: pet (SUV per tissue)
REPORT_SCHEMA_VERSION = "1.4.0"


class SeriesInfo(BaseModel):
    """A series of the input study, as the series chooser saw it."""

    series_instance_uid: str
    series_number: int | None = None
    description: str = ""
    modality: str = ""
    instances: int = 0
    slice_thickness_mm: float | None = None
    convolution_kernel: str = ""
    accepted: bool = False
    reasons: list[str] = Field(default_factory=list)  # why refused, or why preferred


class InputInfo(BaseModel):
    source: str  # the path or job input as given, never patient identifiers
    format: Literal["dicom", "nifti"]
    chosen_series: SeriesInfo | None = None  # None for NIfTI input
    other_series: list[SeriesInfo] = Field(default_factory=list)
    shape: tuple[int, int, int]  # (slices, rows, columns)
    spacing_mm: tuple[float, float, float]  # (slice interval, row, column)
    slice_thickness_mm: float | None = None


class ModelSummary(BaseModel):
    model_id: str
    version: str
    kind: Literal["onnx", "rules"]
    device: str
    sha256: str | None = None


__all__ = [
    "REPORT_SCHEMA_VERSION",
    "ClassMeasurement",
    "InputInfo",
    "ModelSummary",
    "PatientInfo",
    "Report",
    "SeriesInfo",
]


class Report(BaseModel):
    schema_version: str = REPORT_SCHEMA_VERSION
    habitus_version: str
    pipeline_version: str
    created: datetime
    input: InputInfo
    model: ModelSummary
    patient: PatientInfo
    classes: list[ClassMeasurement]
    body_composition: BodyComposition | None = None  # landmarks, waist, torso, L3, flags
    pet: PetSection | None = None  # uptake per tissue from the study's PET; None before 1.4
    timings_s: dict[str, float] = Field(default_factory=dict)  # seconds per stage
    warnings: list[str] = Field(default_factory=list)
    outputs: dict[str, str] = Field(default_factory=dict)  # kind -> file name
