"""Studies: upload a study (zip, multipart form, STOW-RS) and get one job per chosen series.

A STOW-RS request (multipart/related of application/dicom parts, to ``/v1/studies`` or
``/v1/studies/{study}``) is answered as DICOM PS3.18 10.5 says: the Store Instances Response
as DICOM JSON, 200 / 202 / 409 (service.stow). The other forms are answered with a
Submission. Every upload is judged by its content type and declared length before its body
is read, received within the body limits (service.api.upload_body) and unpacked within the
upload limits (service.uploads); what it wrote is removed whatever the answer.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from habitus.errors import InputRefused
from habitus.jobs import JobStore, Origin, OriginKind
from habitus.settings import Settings
from service.api.deps import ClientDep, SettingsDep, StoreDep, require_client
from service.api.problems import PROBLEM_MEDIA_TYPE, ProblemError, authenticated_router
from service.api.schemas import DICOM_JSON_DATASET_SCHEMA, Submission, SubmittedJob
from service.api.upload_body import BodyLimits, receive_body
from service.stow import DICOM_JSON_MEDIA_TYPE, StoreOutcome, identify, sort_submitted
from service.submission import JobOptions, submit_study
from service.uploads import (
    UploadLimits,
    UploadRefused,
    is_stow,
    remove_tree,
    unpack_upload,
    upload_media_type,
)

log = logging.getLogger("service.api")

JOB_IDS_HEADER = "Habitus-Job-Ids"
UID_PATTERN = r"^[0-9]+(\.[0-9]+)*$"

UPLOAD_PROBLEMS = {
    400: "Bad upload",
    408: "The request body stalled or took longer than the configured limits",
    413: "Upload larger than the configured limits",
    415: "Unsupported content type",
}
router = authenticated_router("/v1/studies", "studies", require_client, UPLOAD_PROBLEMS)

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


STOW_MEDIA_TYPES = {
    'multipart/related; type="application/dicom"': {
        "schema": {"type": "string", "format": "binary"}
    },
}
_STORE_RESPONSE = {"schema": DICOM_JSON_DATASET_SCHEMA}
_JOB_IDS = {
    JOB_IDS_HEADER: {
        "description": "ids of the jobs queued, comma-separated",
        "schema": {"type": "string"},
    }
}
# ReferencedSOPSequence (00081199): the stored instances; FailedSOPSequence (00081198): the
# identified instances not stored, each with its FailureReason (00081197);
# OtherFailuresSequence (0008119A): parts that are not DICOM. The private block HABITUS of
# group 0011 carries the job ids (00111001) and each failure's reason in words (00111002).
STOW_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "STOW-RS: every instance was stored (Store Instances Response)",
        "headers": _JOB_IDS,
        "content": {DICOM_JSON_MEDIA_TYPE: _STORE_RESPONSE},
    },
    202: {
        "description": "STOW-RS: some instances were stored, others not (Store Instances "
        "Response); other upload forms: the jobs queued (Submission)",
        "headers": _JOB_IDS,
        "content": {DICOM_JSON_MEDIA_TYPE: _STORE_RESPONSE},
    },
    409: {
        "description": "STOW-RS: no instance was stored (Store Instances Response); or "
        "a problem document",
        "content": {DICOM_JSON_MEDIA_TYPE: _STORE_RESPONSE, PROBLEM_MEDIA_TYPE: {}},
    },
}


def job_options(
    height_cm: Annotated[float | None, Query(gt=0, lt=300)] = None,
    weight_kg: Annotated[float | None, Query(gt=0, lt=700)] = None,
    sex: Annotated[Literal["M", "F"] | None, Query()] = None,
    segmenter: Annotated[Literal["auto", "model", "rules"], Query()] = "auto",
) -> JobOptions:
    return JobOptions(height_cm=height_cm, weight_kg=weight_kg, sex=sex, segmenter=segmenter)


def known_destinations(
    settings: SettingsDep,
    destination: Annotated[
        list[str] | None, Query(description="PACS node names to send the results to")
    ] = None,
) -> list[str] | None:
    unknown = [d for d in destination or [] if settings.node(d) is None]
    if unknown:
        known = ", ".join(n.name for n in settings.dicom_nodes) or "none configured"
        raise ProblemError(
            422,
            f"unknown destination(s) {unknown}; known DICOM nodes: {known}",
            kind="unknown-destination",
        )
    return destination


class DicomJSONResponse(JSONResponse):
    media_type = DICOM_JSON_MEDIA_TYPE


@dataclass(frozen=True)
class UploadRequest:
    """What every upload route takes: the request, the caller and the job options."""

    request: Request
    settings: Settings
    store: JobStore
    client: str
    destinations: list[str] | None
    options: JobOptions


def upload_request(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    client: ClientDep,
    destinations: Annotated[list[str] | None, Depends(known_destinations)],
    options: Annotated[JobOptions, Depends(job_options)],
) -> UploadRequest:
    return UploadRequest(request, settings, store, client, destinations, options)


UploadDep = Annotated[UploadRequest, Depends(upload_request)]


@router.post(
    "",
    status_code=202,
    summary="Upload a study; one job is queued per chosen CT series",
    response_model=Submission,
    responses=STOW_RESPONSES,
    openapi_extra={"requestBody": {"required": True, "content": UPLOAD_MEDIA_TYPES}},
)
async def upload_study(upload: UploadDep) -> JSONResponse:
    return await _upload(upload, study=None)


@router.post(
    "/{study}",
    summary="Store instances of one study (STOW-RS); one job is queued per chosen CT series",
    response_class=DicomJSONResponse,
    responses=STOW_RESPONSES,
    openapi_extra={"requestBody": {"required": True, "content": STOW_MEDIA_TYPES}},
)
async def store_study_instances(
    upload: UploadDep,
    study: Annotated[
        str,
        PathParam(
            pattern=UID_PATTERN,
            max_length=64,
            description="Study Instance UID; instances of other studies are not stored",
        ),
    ],
) -> JSONResponse:
    return await _upload(upload, study=study)


async def _upload(upload: UploadRequest, study: str | None) -> JSONResponse:
    request, settings, store, client = upload.request, upload.settings, upload.store, upload.client
    content_type = request.headers.get("content-type", "")
    try:  # judged before a byte of the body is read
        upload_media_type(content_type)
        stow = is_stow(content_type)
        if study is not None and not stow:
            raise UploadRefused(
                "POST /v1/studies/{study} takes STOW-RS: "
                'multipart/related; type="application/dicom"',
                status=415,
                kind="unsupported-media-type",
            )
    except UploadRefused as exc:
        raise _problem(exc) from exc
    upload_dir = settings.uploads_dir / uuid.uuid4().hex
    upload_dir.mkdir(parents=True, exist_ok=True)
    origin = Origin(
        kind=OriginKind.REST,
        peer_host=request.client.host if request.client else None,
        client=client,
    )
    work = _Upload(
        upload_dir, content_type, settings, store, origin, upload.destinations, upload.options
    )
    try:
        await receive_body(request, work.body, _body_limits(settings))
        if stow:
            outcome = await run_in_threadpool(work.store_instances, study)
        else:
            submission = await run_in_threadpool(work.unpack_and_submit)
    except UploadRefused as exc:
        raise _problem(exc) from exc
    finally:
        remove_tree(upload_dir)
    if stow:
        return _stow_response(outcome, client)
    return _submission_response(submission, store, client)


def _problem(exc: UploadRefused) -> ProblemError:
    # a refused body may still be arriving: the connection is closed rather than drained
    return ProblemError(exc.status, str(exc), kind=exc.kind, headers={"Connection": "close"})


def _body_limits(settings: Settings) -> BodyLimits:
    return BodyLimits(
        max_bytes=settings.api.max_upload_bytes,
        total_s=settings.api.upload_body_timeout_s,
        idle_s=settings.api.upload_idle_timeout_s,
    )


def _upload_limits(settings: Settings) -> UploadLimits:
    return UploadLimits(
        max_unpacked_bytes=settings.api.max_unpacked_bytes,
        max_files=settings.api.max_upload_files,
        max_zip_ratio=settings.api.max_zip_ratio,
    )


class _Upload:
    """One upload's spool folder and what its submission needs; runs in a worker thread."""

    def __init__(
        self,
        folder: Path,
        content_type: str,
        settings: Settings,
        store: JobStore,
        origin: Origin,
        destinations: list[str] | None,
        options: JobOptions,
    ) -> None:
        self.body = folder / "body"
        self.files = folder / "files"
        self.content_type = content_type
        self.settings = settings
        self.store = store
        self.origin = origin
        self.destinations = destinations
        self.options = options

    def _submit(self) -> list[str]:
        return submit_study(
            self.files,
            self.origin,
            destinations=self.destinations,
            options=self.options,
            settings=self.settings,
            store=self.store,
        )

    def unpack_and_submit(self) -> Submission:
        unpacked = unpack_upload(
            self.body, self.content_type, self.files, _upload_limits(self.settings)
        )
        self.body.unlink()
        job_ids = self._submit()
        return Submission(
            job_ids=job_ids,
            jobs=[],
            files_received=len(unpacked.files),
            files_ignored=unpacked.ignored,
        )

    def store_instances(self, study: str | None) -> StoreOutcome:
        unpacked = unpack_upload(
            self.body,
            self.content_type,
            self.files,
            _upload_limits(self.settings),
            require_dicom=False,
        )
        self.body.unlink()
        outcome = StoreOutcome()
        instances = identify(unpacked, outcome, study)
        refusal = None
        if instances:
            try:
                outcome.job_ids = self._submit()
            except InputRefused as exc:  # nothing of the study can be analysed
                refusal = str(exc).replace(f"{self.files}/", "")
        jobs = [self.store.get(j) for j in outcome.job_ids]
        # the CT analysed and the PET carried beside it for uptake per tissue
        analysed = {j.series_instance_uid or "" for j in jobs}
        analysed.update(uid for j in jobs for uid in j.pet_series_instance_uids)
        sort_submitted(instances, analysed, outcome, refusal)
        return outcome


def _stow_response(outcome: StoreOutcome, client: str) -> JSONResponse:
    log.info(
        "STOW-RS from client %s: %d instances stored, %d refused, jobs %s",
        client,
        len(outcome.stored),
        len(outcome.failures),
        ",".join(outcome.job_ids),
    )
    headers = {JOB_IDS_HEADER: ", ".join(outcome.job_ids)} if outcome.job_ids else None
    return DicomJSONResponse(outcome.dicom_json(), status_code=outcome.status, headers=headers)


def _submission_response(submission: Submission, store: JobStore, client: str) -> JSONResponse:
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
