"""The JSON report: a versioned pydantic schema.

The schema version follows semantic versioning: a new optional field bumps the minor
version, a removed or renamed field the major one. ``body_composition`` is filled by the
analytics (landmarks, waist, indices, flags); it is null when they were not computed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

REPORT_SCHEMA_VERSION = "1.0.0"


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


class Report(BaseModel):
    schema_version: str = REPORT_SCHEMA_VERSION
    habitus_version: str
    pipeline_version: str
    created: datetime
    input: InputInfo
    model: ModelSummary
    patient: PatientInfo
    classes: list[ClassMeasurement]
    body_composition: dict[str, Any] | None = None  # filled by habitus.metrics analytics
    timings_s: dict[str, float] = Field(default_factory=dict)  # seconds per stage
    warnings: list[str] = Field(default_factory=list)
    outputs: dict[str, str] = Field(default_factory=dict)  # kind -> file name
