"""What the API shows of jobs and models (never server paths, never patient data)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from habitus.jobs import RESULT_MEDIA_TYPES, DeliveryRecord, JobRecord, JobState, OriginKind


class OriginView(BaseModel):
    kind: OriginKind
    calling_ae_title: str | None = None
    client: str | None = None


class JobView(BaseModel):
    id: str
    version: int
    supersedes: str | None
    state: JobState
    stage: str | None
    percent: float
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    timings_s: dict[str, float]
    warnings: list[str]
    error: str | None
    cancel_requested: bool
    instances: int
    study_instance_uid: str | None
    series_instance_uid: str | None
    origin: OriginView
    destinations: list[str]
    deliveries: dict[str, DeliveryRecord]
    results: dict[str, str] = Field(
        description="result kind -> URL, once the job has succeeded and the file exists"
    )

    @classmethod
    def of(cls, record: JobRecord) -> JobView:
        return cls(
            **record.model_dump(
                include={
                    "id",
                    "version",
                    "supersedes",
                    "state",
                    "stage",
                    "percent",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "attempts",
                    "timings_s",
                    "warnings",
                    "error",
                    "cancel_requested",
                    "instances",
                    "study_instance_uid",
                    "series_instance_uid",
                    "destinations",
                    "deliveries",
                }  # fmt: skip
            ),
            origin=OriginView(
                kind=record.origin.kind,
                calling_ae_title=record.origin.calling_ae_title,
                client=record.origin.client,
            ),
            results=result_links(record),
        )


def result_links(record: JobRecord) -> dict[str, str]:
    if record.state != JobState.SUCCEEDED:
        return {}
    return {
        kind: f"/v1/jobs/{record.id}/{kind}"
        for kind, path in record.result_files.items()
        if kind in RESULT_MEDIA_TYPES and Path(path).is_file()
    }


class JobList(BaseModel):
    jobs: list[JobView]
    count: int


class SubmittedJob(BaseModel):
    id: str
    version: int
    series_instance_uid: str | None
    url: str


class Submission(BaseModel):
    job_ids: list[str]
    jobs: list[SubmittedJob]
    files_received: int
    files_ignored: list[str] = Field(
        default_factory=list, description="upload entries that were not DICOM, and why"
    )


class ModelView(BaseModel):
    model_id: str
    version: str
    kind: str
    description: str = ""
    sha256: str | None = None
    available: bool = Field(description="the model file is present beside its manifest")
    manifest: dict[str, Any] = Field(default_factory=dict)


class ModelList(BaseModel):
    models: list[ModelView]


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


# STOW-RS answers: the Store Instances Response Module (DICOM PS3.18 Annex I) as DICOM JSON
# (PS3.18 F.2), keyed by tag ("00081199"); written by service.stow, described here.
DICOM_JSON_DATASET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Store Instances Response Module (PS3.18 Annex I) in DICOM JSON (F.2)",
    "additionalProperties": {
        "type": "object",
        "required": ["vr"],
        "properties": {
            "vr": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "Value": {"type": "array", "items": {}},
        },
    },
}
