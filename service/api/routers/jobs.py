"""Jobs: list, status, cancel, delete, and their result files."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import redis
from fastapi import FastAPI, Query, Response
from fastapi.responses import FileResponse
from pydantic import Field

from habitus.jobs import MAX_PAGE, RESULT_MEDIA_TYPES, JobRecord, JobState, ResultKind
from habitus.settings import Settings
from service.api.deps import CallerDep, StoreDep, require_caller, visible_job
from service.api.problems import ProblemError, authenticated_router
from service.api.schemas import JobList, JobView
from service.apikeys import Caller
from service.jobfiles import remove_job_files
from service.queue import job_store
from service.retention import retention_lifespan

log = logging.getLogger("service.api")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Index the owners of jobs stored before owners existed; sweep while serving."""
    settings: Settings = app.state.settings
    try:
        indexed = job_store(settings.redis.url).index_owners()
        if indexed:
            log.info("%d jobs stored before owners indexed by owner", indexed)
    except redis.RedisError as exc:  # the next start tries again
        log.warning("jobs not indexed by owner: Redis does not answer (%s)", exc)
    async with retention_lifespan(app):
        yield


JOB_PROBLEMS = {
    403: "The API key lacks the scope this needs",
    404: "No such job, or one the API key may not see",
}
router = authenticated_router("/v1/jobs", "jobs", require_caller, JOB_PROBLEMS, lifespan=_lifespan)


class JobPageView(JobList):
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null when there is none"
    )


@router.get("", summary="List jobs, newest first; a key without read:all sees its own")
def list_jobs(
    store: StoreDep,
    caller: CallerDep,
    state: Annotated[JobState | None, Query(description="only jobs in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[
        str | None, Query(max_length=100, description="the previous page's next_cursor")
    ] = None,
) -> JobPageView:
    owner = None if caller.reads_all else caller.name
    page = store.page(state=state, owner=owner, limit=limit, cursor=cursor)
    jobs = [JobView.of(j) for j in page.jobs]
    return JobPageView(jobs=jobs, count=len(jobs), next_cursor=page.next_cursor)


@router.get("/{job_id}", summary="A job's state, progress, timings and deliveries")
def get_job(job_id: str, store: StoreDep, caller: CallerDep) -> JobView:
    return JobView.of(visible_job(store, caller, job_id))


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    summary="Cancel a job: at once when queued, at the next progress step when running",
)
def cancel_job(job_id: str, store: StoreDep, caller: CallerDep) -> JobView:
    visible_job(store, caller, job_id)  # the route needs `delete`; the job, to be visible

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
def delete_job(job_id: str, store: StoreDep, caller: CallerDep) -> Response:
    record = visible_job(store, caller, job_id)  # the route needs `delete`, too
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


def _result(job_id: str, kind: ResultKind, store: StoreDep, caller: Caller) -> FileResponse:
    record = visible_job(store, caller, job_id)
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
def get_seg(job_id: str, store: StoreDep, caller: CallerDep) -> FileResponse:
    """The DICOM-SEG of the seven classes."""
    return _result(job_id, "seg", store, caller)


@router.get(
    "/{job_id}/sr", response_class=FileResponse, responses=_file_response("application/dicom")
)
def get_sr(job_id: str, store: StoreDep, caller: CallerDep) -> FileResponse:
    """The DICOM SR (TID 1500) of the measurements."""
    return _result(job_id, "sr", store, caller)


@router.get(
    "/{job_id}/report", response_class=FileResponse, responses=_file_response("application/json")
)
def get_report(job_id: str, store: StoreDep, caller: CallerDep) -> FileResponse:
    """The JSON report."""
    return _result(job_id, "report", store, caller)


@router.get("/{job_id}/preview", response_class=FileResponse, responses=_file_response("image/png"))
def get_preview(job_id: str, store: StoreDep, caller: CallerDep) -> FileResponse:
    """A PNG preview of the segmentation."""
    return _result(job_id, "preview", store, caller)
