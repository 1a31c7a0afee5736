"""Studies: upload a study (zip, multipart form, STOW-RS) and get one job per chosen series."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from habitus.jobs import Origin, OriginKind
from service.api.deps import ClientDep, SettingsDep, StoreDep, require_client
from service.api.problems import PROBLEM_MEDIA_TYPE, PROBLEM_RESPONSES, Problem, ProblemError
from service.api.schemas import Submission, SubmittedJob
from service.settings import ServiceSettings
from service.submission import JobOptions, submit_study
from service.uploads import UploadLimits, UploadRefused, remove_tree, unpack_upload

log = logging.getLogger("service.api")

router = APIRouter(
    prefix="/v1/studies",
    tags=["studies"],
    dependencies=[Depends(require_client)],
    responses={
        **PROBLEM_RESPONSES,
        400: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": "Bad upload"},
        413: {
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {}},
            "description": "Upload larger than the configured limits",
        },
        415: {
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {}},
            "description": "Unsupported content type",
        },
    },
)

UPLOAD_MEDIA_TYPES = {
    "application/zip": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
            },
        }
    },
    'multipart/related; type="application/dicom"': {
        "schema": {"type": "string", "format": "binary"}
    },
    "application/dicom": {"schema": {"type": "string", "format": "binary"}},
}


async def _receive_body(request: Request, destination: Path, limit: int) -> None:
    """Stream the request body to ``destination``, refusing it past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadRefused(
            f"uploads may be at most {limit} bytes; this one declares {declared}",
            status=413,
            kind="upload-too-large",
        )
    received = 0
    with destination.open("wb") as out:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise UploadRefused(
                    f"uploads may be at most {limit} bytes; this one is larger",
                    status=413,
                    kind="upload-too-large",
                )
            out.write(chunk)


@router.post(
    "",
    status_code=202,
    summary="Upload a study; one job is queued per chosen CT series",
    response_model=Submission,
    openapi_extra={"requestBody": {"required": True, "content": UPLOAD_MEDIA_TYPES}},
)
async def upload_study(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    client: ClientDep,
    destination: Annotated[
        list[str] | None, Query(description="PACS node names to send the results to")
    ] = None,
    height_cm: Annotated[float | None, Query(gt=0, lt=300)] = None,
    weight_kg: Annotated[float | None, Query(gt=0, lt=700)] = None,
    sex: Annotated[Literal["M", "F"] | None, Query()] = None,
    segmenter: Annotated[Literal["auto", "model", "rules"], Query()] = "auto",
) -> JSONResponse:
    unknown = [d for d in destination or [] if settings.node(d) is None]
    if unknown:
        known = ", ".join(n.name for n in settings.dicom_nodes) or "none configured"
        raise ProblemError(
            422,
            f"unknown destination(s) {unknown}; known DICOM nodes: {known}",
            kind="unknown-destination",
        )
    upload_dir = settings.uploads_dir / uuid.uuid4().hex
    upload_dir.mkdir(parents=True, exist_ok=True)
    try:
        body = upload_dir / "body"
        await _receive_body(request, body, settings.max_upload_bytes)
        origin = Origin(
            kind=OriginKind.REST,
            peer_host=request.client.host if request.client else None,
            client=client,
        )
        options = JobOptions(height_cm=height_cm, weight_kg=weight_kg, sex=sex, segmenter=segmenter)
        submission = await run_in_threadpool(
            _unpack_and_submit,
            body,
            request.headers.get("content-type", ""),
            upload_dir / "files",
            settings,
            origin,
            destination,
            options,
        )
    except UploadRefused as exc:
        raise ProblemError(exc.status, str(exc), kind=exc.kind) from exc
    finally:
        remove_tree(upload_dir)
    jobs = [store.get(job_id) for job_id in submission.job_ids]
    submission.jobs = [
        SubmittedJob(
            id=j.id, version=j.version, series_instance_uid=j.series_instance_uid,
            url=f"/v1/jobs/{j.id}",
        )
        for j in jobs
    ]  # fmt: skip
    log.info(
        "upload from client %s: %d files, jobs %s",
        client,
        submission.files_received,
        ",".join(submission.job_ids),
    )
    headers = {"Location": submission.jobs[0].url} if submission.jobs else {}
    return JSONResponse(submission.model_dump(mode="json"), status_code=202, headers=headers)


def _unpack_and_submit(
    body: Path,
    content_type: str,
    files_dir: Path,
    settings: ServiceSettings,
    origin: Origin,
    destinations: list[str] | None,
    options: JobOptions,
) -> Submission:
    limits = UploadLimits(
        max_unpacked_bytes=settings.max_unpacked_bytes, max_files=settings.max_upload_files
    )
    unpacked = unpack_upload(body, content_type, files_dir, limits)
    body.unlink()
    job_ids = submit_study(
        files_dir, origin, destinations=destinations, options=options, settings=settings
    )
    return Submission(
        job_ids=job_ids, jobs=[], files_received=len(unpacked.files), files_ignored=unpacked.ignored
    )
