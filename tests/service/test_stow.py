"""STOW-RS as DICOM PS3.18 10.5 says, against the API served by uvicorn, with the real
DICOMweb client (dicomweb-client) where it can say what we test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
import redis
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from habitus.jobs import JobStore
from habitus.phantoms.pet import PetHeader
from habitus.phantoms.write_dicom import axial_geometry, write_series
from tests.service.live_api import LiveApi, live_api
from tests.service.support import API_KEY, AUTH, write_ct_series

pytestmark = pytest.mark.integration

CANNOT_UNDERSTAND = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122
STUDY_INSTANCE_UID_MISMATCH = 0xC409
PRIVATE_CREATOR = "HABITUS"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with live_api(tmp_path_factory.mktemp("stow")) as running:
        yield running


@pytest.fixture(scope="module")
def pet_files(tmp_path_factory: pytest.TempPathFactory, ct_study: Path) -> list[Path]:
    """Four PET slices of the CT's study, as a PET-CT sends them."""
    study_uid = pydicom.dcmread(next(ct_study.rglob("*.dcm"))).StudyInstanceUID
    shape, spacing = (4, 16, 16), (2.5, 25.0, 25.0)
    activity = np.full(shape, 1000, dtype=np.int16)
    folder = tmp_path_factory.mktemp("pet")
    return write_series(
        folder, activity, axial_geometry(shape, spacing), pet=PetHeader(),
        series_number=2, series_description="PET", study_uid=study_uid,
    )  # fmt: skip


def dicomweb(api: LiveApi) -> DICOMwebClient:
    # small chunks: the client streams the body with chunked transfer encoding, no length
    return DICOMwebClient(
        url=f"{api.url}/v1", headers={"Authorization": f"Bearer {API_KEY}"}, chunk_size=65536
    )


def ct_datasets(ct_study: Path) -> list[Dataset]:
    return [pydicom.dcmread(p) for p in sorted(ct_study.rglob("*.dcm"))]


def failures(response: Dataset) -> dict[str, int]:
    """SOP Instance UID -> Failure Reason of the Failed SOP Sequence."""
    return {
        item.ReferencedSOPInstanceUID: item.FailureReason
        for item in response.get("FailedSOPSequence", [])
    }


def reason_text(item: Dataset) -> str:
    return str(item.private_block(0x0011, PRIVATE_CREATOR)[0x02].value)


def job_ids(response: Dataset) -> list[str]:
    value = response.private_block(0x0011, PRIVATE_CREATOR)[0x01].value
    return [value] if isinstance(value, str) else list(value)


def test_dicomweb_client_stores_a_series_and_gets_every_instance_referenced(
    api: LiveApi, ct_study: Path, store: JobStore
) -> None:
    datasets = ct_datasets(ct_study)
    response = dicomweb(api).store_instances(datasets)
    referenced = response.ReferencedSOPSequence
    assert {i.ReferencedSOPInstanceUID for i in referenced} == {d.SOPInstanceUID for d in datasets}
    assert {i.ReferencedSOPClassUID for i in referenced} == {datasets[0].SOPClassUID}
    assert all("RetrieveURL" in i for i in referenced)  # Type 2: present, empty (no WADO-RS)
    assert "FailedSOPSequence" not in response and "RetrieveURL" in response
    [job_id] = job_ids(response)
    job = store.get(job_id)
    assert job.instances == len(datasets) and job.origin.client == "tests"
    assert api.leftovers() == []


def test_all_stored_is_200_with_the_job_ids_in_a_header(
    api: LiveApi, ct_study: Path, redis_client: redis.Redis
) -> None:
    response = post_parts(api, [(p.read_bytes(), "application/dicom") for p in ct_files(ct_study)])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    body = Dataset.from_json(response.json())
    assert response.headers["habitus-job-ids"] == ", ".join(job_ids(body))


def test_a_partly_failed_post_is_202_with_each_refusal_and_its_reason(
    api: LiveApi, ct_study: Path, pet_files: list[Path], redis_client: redis.Redis
) -> None:
    parts = [(p.read_bytes(), "application/dicom") for p in [*ct_files(ct_study), *pet_files]]
    parts.append((b"this is not a DICOM file", "application/dicom"))
    response = post_parts(api, parts)
    assert response.status_code == 202, response.text
    body = Dataset.from_json(response.json())
    assert len(body.ReferencedSOPSequence) == len(ct_files(ct_study))
    pet_uids = {pydicom.dcmread(p).SOPInstanceUID for p in pet_files}
    assert failures(body) == dict.fromkeys(pet_uids, SOP_CLASS_NOT_SUPPORTED)
    assert "Habitus analyses CT; this instance is PT" in reason_text(body.FailedSOPSequence[0])
    [other] = body.OtherFailuresSequence
    assert other.FailureReason == CANNOT_UNDERSTAND
    assert "'DICM'" in reason_text(other)
    assert api.leftovers() == []


def test_nothing_stored_is_409_and_the_client_sees_why(
    api: LiveApi, pet_files: list[Path], redis_client: redis.Redis
) -> None:
    datasets = [pydicom.dcmread(p) for p in pet_files]
    with pytest.raises(requests.HTTPError) as refused:
        dicomweb(api).store_instances(datasets)
    response = refused.value.response
    assert response is not None and response.status_code == 409
    body = Dataset.from_json(response.json())
    assert failures(body) == {d.SOPInstanceUID: SOP_CLASS_NOT_SUPPORTED for d in datasets}
    assert "ReferencedSOPSequence" not in body


def test_a_post_to_a_study_stores_only_that_study(
    api: LiveApi, ct_study: Path, tmp_path: Path, redis_client: redis.Redis
) -> None:
    datasets = ct_datasets(ct_study)
    stranger = pydicom.dcmread(write_ct_series(tmp_path / "other", slices=1, size=16)[0])
    study_uid = datasets[0].StudyInstanceUID
    response = dicomweb(api).store_instances([*datasets, stranger], study_uid)
    assert len(response.ReferencedSOPSequence) == len(datasets)
    assert failures(response) == {stranger.SOPInstanceUID: STUDY_INSTANCE_UID_MISMATCH}
    assert f"not to study {study_uid}" in reason_text(response.FailedSOPSequence[0])


def test_other_upload_forms_to_a_study_are_refused(api: LiveApi) -> None:
    response = httpx.post(
        f"{api.url}/v1/studies/1.2.3",
        content=b"PK\x05\x06" + bytes(18),
        headers={**AUTH, "Content-Type": "application/zip"},
    )
    assert response.status_code == 415
    assert "takes STOW-RS" in response.json()["detail"]


def ct_files(ct_study: Path) -> list[Path]:
    return sorted(ct_study.rglob("*.dcm"))


def post_parts(api: LiveApi, parts: list[tuple[bytes, str]]) -> httpx.Response:
    boundary = "stow-test-boundary"
    body = b"".join(
        f"--{boundary}\r\nContent-Type: {media}\r\n\r\n".encode() + data + b"\r\n"
        for data, media in parts
    )
    return httpx.post(
        f"{api.url}/v1/studies",
        content=body + f"--{boundary}--\r\n".encode(),
        headers={
            **AUTH,
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
        timeout=60,
    )
