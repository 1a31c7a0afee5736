"""End to end: a PACS (Orthanc) auto-routes CT to Habitus and gets a SEG and an SR back."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
import redis

from habitus.jobs import JobState, JobStore
from habitus.phantoms.studies import write_petct_study
from tests.e2e.conftest import ECHOSCU, HabitusStack, storescu, wait_for
from tests.e2e.instances import restore_uids

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ANALYSIS_TIMEOUT_S = 300  # a shared 2-core machine runs the rule-based segmenter slowly


def results_in_orthanc(stack: HabitusStack, source_series_uid: str) -> dict[str, list[Any]]:
    """SEG and SR data sets in Orthanc that reference ``source_series_uid``."""
    found: dict[str, list[Any]] = {"SEG": [], "SR": []}
    for modality in found:
        for series in stack.orthanc.series_of_modality(modality):
            for instance_id in series["Instances"]:
                raw = httpx.get(f"{stack.orthanc.url}/instances/{instance_id}/file", timeout=30)
                ds = pydicom.dcmread(io.BytesIO(raw.content), stop_before_pixels=True)
                if source_series_uid in referenced_series(ds):
                    found[modality].append(ds)
    return found


def referenced_series(ds: Any) -> set[str]:
    """Series UIDs a SEG or SR points at (Referenced Series / Current Requested Procedure
    Evidence / Common Instance Reference)."""
    uids = set()
    for item in ds.get("ReferencedSeriesSequence", []):
        uids.add(str(item.SeriesInstanceUID))
    for sequence in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in ds.get(sequence, []):
            for item in study.get("ReferencedSeriesSequence", []):
                uids.add(str(item.SeriesInstanceUID))
    return uids


def delivered_job(stack: HabitusStack, series_uid: str) -> dict[str, Any] | None:
    job = stack.job_of_series(series_uid)
    if job is None:
        return None
    if job["state"] == "failed":
        raise AssertionError(f"job {job['id']} failed: {job['error']}")
    delivery = job["deliveries"].get("orthanc", {})
    return job if job["state"] == "succeeded" and delivery.get("state") == "done" else None


def test_orthanc_routes_the_real_series_and_gets_seg_and_sr_back(
    stack: HabitusStack, shared_data: Path, tmp_path: Path
) -> None:
    files = restore_uids(shared_data / "ts-petct-dicom" / "series", tmp_path / "petct")
    series_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    storescu(stack.orthanc.dicom_port, files, called=stack.orthanc.aet)

    job = wait_for(
        lambda: delivered_job(stack, series_uid), ANALYSIS_TIMEOUT_S, "the job to be delivered"
    )
    assert job["origin"]["calling_ae_title"] == stack.orthanc.aet
    assert job["destinations"] == ["orthanc"]
    assert job["instances"] == len(files)
    results = wait_for(
        lambda: (r := results_in_orthanc(stack, series_uid))["SEG"] and r["SR"] and r,
        30,
        "the SEG and SR in Orthanc",
    )
    assert len(results["SEG"]) == 1 and len(results["SR"]) == 1
    delivered = set(job["deliveries"]["orthanc"]["delivered_sop_instance_uids"])
    assert {str(results["SEG"][0].SOPInstanceUID), str(results["SR"][0].SOPInstanceUID)} == (
        delivered
    )
    report = stack.api(f"/v1/jobs/{job['id']}/report")
    assert report.status_code == 200
    assert report.json()["input"]["chosen_series"]["series_instance_uid"] == series_uid


def test_orthanc_routes_a_petct_study_and_the_body_ct_is_analysed(
    stack: HabitusStack, tmp_path: Path
) -> None:
    study = write_petct_study(tmp_path / "study", slices=40, rows=96, seed=7)
    storescu(stack.orthanc.dicom_port, study.files, called=stack.orthanc.aet)

    job = wait_for(
        lambda: delivered_job(stack, study.expected_series_uid),
        ANALYSIS_TIMEOUT_S,
        "the body CT's job to be delivered",
    )
    results = results_in_orthanc(stack, study.expected_series_uid)
    assert len(results["SEG"]) == 1 and len(results["SR"]) == 1
    # Orthanc routed CT only; no job analysed a distractor of this study
    others = [
        j for j in stack.jobs()
        if j["study_instance_uid"] == study.study_instance_uid and j["id"] != job["id"]
    ]  # fmt: skip
    assert [j["series_instance_uid"] for j in others if j["state"] != "failed"] == []


def test_an_unknown_calling_ae_is_rejected(stack: HabitusStack) -> None:
    result = subprocess.run(
        [str(ECHOSCU), "-aet", "STRANGER", "-aec", "HABITUS", "127.0.0.1",
         str(stack.listener_port)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Association Rejected" in result.stdout + result.stderr


def test_orthanc_down_at_delivery_then_up_ends_delivered(
    stack: HabitusStack, tmp_path: Path
) -> None:
    study = write_petct_study(tmp_path / "study", slices=24, rows=64, seed=11)
    body_ct = [p for p in study.files if p.parent.name == "s02"]
    stack.orthanc.stop()
    # the study comes straight from the node's AE title, so results go back to that node
    storescu(stack.listener_port, body_ct, called="HABITUS", calling=stack.orthanc.aet)
    retrying = wait_for(
        lambda: (
            (j := stack.job_of_series(study.expected_series_uid))
            and j["deliveries"].get("orthanc", {}).get("attempts", 0) >= 2
            and j
        ),
        ANALYSIS_TIMEOUT_S,
        "delivery attempts to the stopped Orthanc",
    )
    delivery = retrying["deliveries"]["orthanc"]
    assert delivery["state"] in ("pending", "sending")
    assert delivery["last_error"] and delivery["next_attempt_at"]

    stack.orthanc.start()
    job = wait_for(
        lambda: delivered_job(stack, study.expected_series_uid), 60, "delivery after restart"
    )
    assert job["deliveries"]["orthanc"]["attempts"] >= 3
    results = results_in_orthanc(stack, study.expected_series_uid)
    assert len(results["SEG"]) == 1 and len(results["SR"]) == 1


def test_a_worker_killed_mid_job_still_leaves_one_seg_in_orthanc(
    stack: HabitusStack, tmp_path: Path
) -> None:
    study = write_petct_study(tmp_path / "study", slices=32, rows=96, seed=13)
    body_ct = [p for p in study.files if p.parent.name == "s02"]
    storescu(stack.listener_port, body_ct, called="HABITUS", calling=stack.orthanc.aet)
    wait_for(
        lambda: (j := stack.job_of_series(study.expected_series_uid)) and j["state"] == "running",
        ANALYSIS_TIMEOUT_S,
        "the job to start",
    )
    stack.kill_worker()
    # the new worker looks for the dead one's unacknowledged task every second (the
    # default, a minute, would make this test wait that long past the visibility timeout)
    stack.start_worker(HABITUS_REDELIVERY_CHECK_S="1")
    job = wait_for(
        lambda: delivered_job(stack, study.expected_series_uid),
        ANALYSIS_TIMEOUT_S,
        "the job to run again and be delivered",
    )
    assert job["attempts"] == 2
    results = results_in_orthanc(stack, study.expected_series_uid)
    assert len(results["SEG"]) == 1 and len(results["SR"]) == 1
    # one job for the series, finished once
    jobs = [j for j in stack.jobs() if j["series_instance_uid"] == study.expected_series_uid]
    assert [j["id"] for j in jobs] == [job["id"]]
    history = JobStore(redis.Redis.from_url(stack.redis_url)).get(job["id"]).history
    assert [e.state for e in history if e.state.is_terminal] == [JobState.SUCCEEDED]
