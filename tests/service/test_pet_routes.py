"""PET uptake where the service runs: `habitus serve` (uvicorn, the DICOM listener and a Celery
worker) analyses a PET-CT study with its PET whether it is uploaded over REST or pushed by PACS
with storescu, and analyses a CT again, as a new version, when its PET arrives late."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from habitus.jobs import JobRecord, JobState, JobStore
from habitus.phantoms.studies import SyntheticStudy, write_petct_study
from tests.conftest import missing
from tests.polling import wait_for
from tests.service.support import AUTH, zip_files
from tests.service.test_serve import (  # noqa: F401  (the serve fixture)
    Served,
    finished,
    serve,
    wait_until_ready,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ANALYSIS_TIMEOUT_S = 240  # the rule-based segmenter on a shared 2-core machine


def petct(folder: Path, seed: int) -> SyntheticStudy:
    return write_petct_study(folder, slices=40, rows=96, seed=seed)


def push(port: int, files: list[Path]) -> None:
    """Send ``files`` to the listener with dcmtk's storescu, as PACS routes them."""
    storescu = shutil.which("storescu")
    if storescu is None:
        missing("dcmtk's storescu is not installed")
    result = subprocess.run(
        [storescu, "-aet", "PACS", "-aec", "HABITUS", "127.0.0.1", str(port), *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def stow(base: str, files: list[Path]) -> httpx.Response:
    """STOW-RS of ``files`` as one multipart/related request."""
    boundary = "pet-boundary"
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + path.read_bytes()
        + b"\r\n"
        for path in files
    )
    media = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return httpx.post(
        f"{base}/v1/studies",
        content=body + f"--{boundary}--\r\n".encode(),
        headers={**AUTH, "Content-Type": media},
        params={"segmenter": "rules"},
        timeout=60,
    )


def job_done(store: JobStore, series_uid: str, version: int) -> JobRecord | None:
    """The series' latest job once it is ``version`` and has finished."""
    job = store.latest_for_series(series_uid)
    if job is None or job.version != version or not job.state.is_terminal:
        return None
    return job


def report_pet(job: JobRecord) -> dict[str, Any]:
    assert job.state == JobState.SUCCEEDED, job.error
    pet: dict[str, Any] = json.loads(Path(job.result_files["report"]).read_text())["pet"]
    return pet


def test_rest_and_pacs_analyse_the_study_with_its_pet(
    tmp_path: Path,
    serve: Callable[..., Served],  # noqa: F811  (the fixture)
    store: JobStore,
) -> None:
    served = serve(listener_stored_modalities='["CT", "PT"]', listener_quiet_after_release_s="1")
    wait_until_ready(served, 90)

    # REST: a zip of the whole study; its PET travels with the chosen CT
    uploaded = petct(tmp_path / "rest", seed=21)
    response = httpx.post(
        f"{served.base}/v1/studies",
        content=zip_files(uploaded.files, tmp_path / "rest"),
        headers={**AUTH, "Content-Type": "application/zip"},
        params={"segmenter": "rules"},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    job_url = served.base + response.headers["location"]
    job = wait_for(lambda: finished(job_url), ANALYSIS_TIMEOUT_S, "the uploaded study's job")
    assert job is not None and job["state"] == "succeeded", job
    pet = httpx.get(f"{job_url}/report", headers=AUTH).json()["pet"]
    assert pet["analysed"], pet["reason"]
    assert pet["chosen_series"]["series_instance_uid"] == uploaded.series["PET AC"]

    # STOW-RS: the CT and the PET stored, the PET carried into the CT's job
    stowed = petct(tmp_path / "stow", seed=24)
    files = sorted((tmp_path / "stow" / "s02").iterdir()) + sorted(
        (tmp_path / "stow" / "s06").iterdir()
    )
    response = stow(served.base, files)
    assert response.status_code == 200, response.text  # every instance stored, PET included
    [stow_job] = response.headers["Habitus-Job-Ids"].split(", ")
    job = wait_for(
        lambda: finished(f"{served.base}/v1/jobs/{stow_job}"), ANALYSIS_TIMEOUT_S, "STOW's job"
    )
    assert job is not None and job["state"] == "succeeded", job
    assert (
        report_pet(store.get(stow_job))["chosen_series"]["series_instance_uid"]
        == (stowed.series["PET AC"])
    )

    # PACS: the CT and its PET pushed together, within the quiet period
    together = petct(tmp_path / "together", seed=22)
    push(
        served.dicom_port,
        sorted((tmp_path / "together" / "s02").iterdir())
        + sorted((tmp_path / "together" / "s06").iterdir()),
    )
    first = wait_for(
        lambda: job_done(store, together.expected_series_uid, 1), ANALYSIS_TIMEOUT_S, "the job"
    )
    assert report_pet(first)["analysed"]

    # PACS: the CT alone, then its PET after the CT was analysed: a new version with the PET
    late = petct(tmp_path / "late", seed=23)
    push(served.dicom_port, sorted((tmp_path / "late" / "s02").iterdir()))
    ct_only = wait_for(
        lambda: job_done(store, late.expected_series_uid, 1), ANALYSIS_TIMEOUT_S, "the CT's job"
    )
    assert report_pet(ct_only)["found"] is False
    push(served.dicom_port, sorted((tmp_path / "late" / "s06").iterdir()))
    again = wait_for(
        lambda: job_done(store, late.expected_series_uid, 2), ANALYSIS_TIMEOUT_S, "version 2"
    )
    assert again.supersedes == ct_only.id
    assert again.pet_series_instance_uids == [late.series["PET AC"]]
    pet = report_pet(again)
    assert pet["analysed"] and pet["chosen_series"]["series_instance_uid"] == late.series["PET AC"]
