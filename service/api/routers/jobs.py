"""Jobs: list, status, cancel, delete, and their result files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import FileResponse

from habitus.jobs import RESULT_MEDIA_TYPES, JobRecord, JobState, ResultKind
from service.api.deps import StoreDep, require_client
from service.api.problems import PROBLEM_RESPONSES, ProblemError
from service.api.schemas import JobList, JobView
from service.jobfiles import remove_job_files

log = logging.getLogger("service.api")

router = APIRouter(
    prefix="/v1/jobs",
    tags=["jobs"],
    dependencies=[Depends(require_client)],
    responses=PROBLEM_RESPONSES,
)


@router.get("", summary="List jobs, newest first")
def list_jobs(
    store: StoreDep,
    state: Annotated[JobState | None, Query(description="only jobs in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobList:
    jobs = [JobView.of(j) for j in store.list(state=state, limit=limit, offset=offset)]
    return JobList(jobs=jobs, count=len(jobs))


@router.get("/{job_id}", summary="A job's state, progress, timings and deliveries")
def get_job(job_id: str, store: StoreDep) -> JobView:
    return JobView.of(store.get(job_id))


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    summary="Cancel a job: at once when queued, at the next progress step when running",
)
def cancel_job(job_id: str, store: StoreDep) -> JobView:
    def cancel(record: JobRecord) -> JobRecord:
        if record.state == JobState.QUEUED:
            return record.with_state(
                JobState.CANCELLED, "cancelled by the API", cancel_requested=True
            )
        if record.state == JobState.RUNNING:
            return record.model_copy(update={"cancel_requested": True})
        raise ProblemError(
            409,
            f"only queued or running jobs can be cancelled; job {job_id} is {record.state}",
            kind="job-conflict",
        )

    record = store.update(job_id, cancel)
    log.info("job %s cancel requested", job_id, extra={"job_id": job_id})
    return JobView.of(record)


@router.delete("/{job_id}", status_code=204, summary="Delete a job and its files")
def delete_job(job_id: str, store: StoreDep) -> Response:
    record = store.get(job_id)
    if record.state == JobState.RUNNING:
        raise ProblemError(
            409,
            f"job {job_id} is running; cancel it and wait until it is cancelled to delete it",
            kind="job-conflict",
        )
    store.delete(job_id)
    remove_job_files(record)
    log.info("job %s deleted", job_id, extra={"job_id": job_id})
    return Response(status_code=204)


def _result(job_id: str, kind: ResultKind, store: StoreDep) -> FileResponse:
    record = store.get(job_id)
    if record.state != JobState.SUCCEEDED:
        reason = f": {record.error}" if record.error else ""
        raise ProblemError(
            409,
            f"the {kind} of job {job_id} exists once the job has succeeded; "
            f"the job is {record.state}{reason}",
            kind="result-not-ready",
            state=record.state.value,
        )
    stored = record.result_files.get(kind)
    if stored is None or not Path(stored).is_file():
        raise ProblemError(
            404, f"job {job_id} succeeded without producing a {kind}", kind="result-missing"
        )
    return FileResponse(
        stored,
        media_type=RESULT_MEDIA_TYPES[kind],
        filename=f"{job_id}-{Path(stored).name}",
    )


def _file_response(media_type: str) -> dict[int | str, dict[str, object]]:
    return {200: {"content": {media_type: {}}, "description": "The result file"}}


@router.get(
    "/{job_id}/seg", response_class=FileResponse, responses=_file_response("application/dicom")
)
def get_seg(job_id: str, store: StoreDep) -> FileResponse:
    """The DICOM-SEG of the seven classes."""
    return _result(job_id, "seg", store)


@router.get(
    "/{job_id}/sr", response_class=FileResponse, responses=_file_response("application/dicom")
)
def get_sr(job_id: str, store: StoreDep) -> FileResponse:
    """The DICOM SR (TID 1500) of the measurements."""
    return _result(job_id, "sr", store)


@router.get(
    "/{job_id}/report", response_class=FileResponse, responses=_file_response("application/json")
)
def get_report(job_id: str, store: StoreDep) -> FileResponse:
    """The JSON report."""
    return _result(job_id, "report", store)


@router.get("/{job_id}/preview", response_class=FileResponse, responses=_file_response("image/png"))
def get_preview(job_id: str, store: StoreDep) -> FileResponse:
    """A PNG preview of the segmentation."""
    return _result(job_id, "preview", store)
