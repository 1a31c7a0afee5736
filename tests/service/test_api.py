"""The REST API over a real Redis: auth, uploads, jobs, results, health, metrics, problems."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from habitus.jobs import ANALYZE_QUEUE, JobRecord, JobState, JobStore, Origin, OriginKind
from habitus.liveness import beat
from habitus.settings import Settings
from tests.service.support import AUTH, zip_files

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body


def upload_zip(client: TestClient, study: Path, **params: object) -> httpx.Response:
    files = sorted(p for p in study.rglob("*") if p.is_file())
    return client.post(
        "/v1/studies",
        content=zip_files(files, study),
        headers={**AUTH, "Content-Type": "application/zip"},
        params=params,
    )


def stored_job(
    store: JobStore, tmp_path: Path, state: JobState = JobState.QUEUED, **fields: object
) -> JobRecord:
    folder = tmp_path / "jobs" / "j"
    (folder / "input").mkdir(parents=True, exist_ok=True)
    (folder / "output").mkdir(exist_ok=True)
    record = store.create(
        JobRecord(
            input_dir=str(folder / "input"),
            output_dir=str(folder / "output"),
            origin=Origin(kind=OriginKind.REST),
            **fields,  # type: ignore[arg-type]
        )
    )
    if state != JobState.QUEUED:
        store.transition(record.id, JobState.RUNNING)
        if state != JobState.RUNNING:
            record = store.transition(record.id, state)
    return store.get(record.id)


# --- auth and problems ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}]
)
def test_routes_need_a_valid_api_key(client: TestClient, headers: dict[str, str]) -> None:
    for path in ("/v1/jobs", "/v1/models", "/v1/jobs/abc"):
        body = assert_problem(client.get(path, headers=headers), 401)
        assert "API key" in str(body["detail"])
    response = client.get("/v1/jobs", headers=headers)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_missing_key_and_a_wrong_key_get_their_own_challenge(client: TestClient) -> None:
    assert client.get("/v1/jobs").headers["www-authenticate"] == "Bearer"
    wrong = client.get("/v1/jobs", headers={"Authorization": "Bearer wrong"})
    assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_health_needs_no_key(client: TestClient, store: JobStore) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    beat(store.redis, [ANALYZE_QUEUE], "celery@test:1", ttl_s=30)  # a live worker
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": "ok", "spool": "ok", "worker": "ok"}


def test_readyz_fails_when_the_spool_cannot_be_written(settings: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    broken = settings.replaced(spool_dir=blocker / "spool")
    from service.api import create_app

    with TestClient(create_app(broken)) as broken_client:
        body = assert_problem(broken_client.get("/readyz"), 503)
    assert "not writable" in str(body["detail"])
    assert str(blocker) not in str(body)  # anonymous callers learn no paths


def test_redis_away_is_503_not_500(settings: Settings) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    away = settings.replaced(redis={"url": f"redis://127.0.0.1:{port}/0"})
    from service.api import create_app

    with TestClient(create_app(away)) as away_client:
        body = assert_problem(away_client.get("/v1/jobs", headers=AUTH), 503)
        assert body["type"].endswith("store-unavailable")
        assert "Redis" in str(body["detail"])
        assert away_client.get("/healthz").status_code == 200
        ready = assert_problem(away_client.get("/readyz"), 503)
        assert ready["checks"]["redis"] == "no answer from Redis"  # no URL, no exception text
        assert str(port) not in str(ready)


def test_unknown_route_and_unknown_job_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing", headers=AUTH), 404)
    body = assert_problem(client.get("/v1/jobs/0000", headers=AUTH), 404)
    assert "no job with id" in str(body["detail"])


@pytest.mark.parametrize(
    ("path", "allow"),
    [("/v1/jobs/abc", "DELETE, GET"), ("/v1/jobs", "GET"), ("/v1/studies", "POST")],
)
def test_405_allows_every_method_of_the_path(client: TestClient, path: str, allow: str) -> None:
    body = assert_problem(client.put(path, headers=AUTH), 405)
    assert body["detail"] == "Method Not Allowed"
    assert client.put(path, headers=AUTH).headers["allow"] == allow


def test_validation_errors_are_problems(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/jobs?state=bogus", headers=AUTH), 422)
    assert body["errors"][0]["loc"] == ["query", "state"]


# --- uploads --------------------------------------------------------------------------------


def test_zip_upload_queues_one_job_per_series(
    client: TestClient, ct_study: Path, store: JobStore, settings: Settings
) -> None:
    response = upload_zip(client, ct_study, height_cm=180, segmenter="rules")
    assert response.status_code == 202, response.text
    body = response.json()
    assert len(body["job_ids"]) == 1 and body["files_received"] == 24
    job_id = body["job_ids"][0]
    assert response.headers["location"] == f"/v1/jobs/{job_id}"
    record = store.get(job_id)
    assert record.state == JobState.QUEUED
    assert record.instances == 24 and record.series_instance_uid
    assert record.options == {"height_cm": 180.0, "segmenter": "rules"}
    assert record.origin.client == "tests"
    assert len(list(Path(record.input_dir).iterdir())) == 24
    assert store.redis.llen(store.keys.queue(ANALYZE_QUEUE)) == 1
    assert not any(settings.uploads_dir.iterdir())  # the upload spool is cleaned up
    view = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
    assert view["state"] == "queued" and view["results"] == {}
    assert "input_dir" not in view


def test_upload_with_destination_records_a_pending_delivery(
    client: TestClient, ct_study: Path, store: JobStore
) -> None:
    response = upload_zip(client, ct_study, destination="pacs")
    job = store.get(response.json()["job_ids"][0])
    assert job.destinations == ["pacs"] and job.deliveries["pacs"].state == "pending"
    body = assert_problem(upload_zip(client, ct_study, destination="elsewhere"), 422)
    assert "known DICOM nodes: pacs" in str(body["detail"])


def test_stow_rs_upload(client: TestClient, ct_study: Path) -> None:
    boundary = "stowboundary"
    parts = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + p.read_bytes()
        + b"\r\n"
        for p in sorted(ct_study.rglob("*.dcm"))
    )
    response = client.post(
        "/v1/studies",
        content=parts + f"--{boundary}--\r\n".encode(),
        headers={
            **AUTH,
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
    )
    assert response.status_code == 200, response.text  # all stored: PS3.18 10.5.3
    assert response.headers["content-type"] == "application/dicom+json"
    assert len(response.json()["00081199"]["Value"]) == 24  # ReferencedSOPSequence
    assert response.headers["habitus-job-ids"]


def test_multipart_form_upload(client: TestClient, ct_study: Path) -> None:
    files = [
        ("files", (p.name, p.read_bytes(), "application/dicom"))
        for p in sorted(ct_study.rglob("*.dcm"))
    ]
    response = client.post("/v1/studies", files=files, headers=AUTH)
    assert response.status_code == 202, response.text


def test_zip_slip_is_refused(client: TestClient, tmp_path: Path) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../evil.dcm", b"x")
    response = client.post(
        "/v1/studies",
        content=buffer.getvalue(),
        headers={**AUTH, "Content-Type": "application/zip"},
    )
    body = assert_problem(response, 400)
    assert str(body["type"]).endswith("zip-entry-escapes")


def one_entry_zip(name: str = "a.dcm", compression: int = zipfile.ZIP_STORED) -> bytearray:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        archive.writestr(name, bytes(range(256)) * 40)
    return bytearray(buffer.getvalue())


def damaged_zip(damage: str) -> bytes:
    if damage == "offset-outside-the-archive":  # the end record points past its directory
        data = one_entry_zip()
        end = data.rfind(b"PK\x05\x06")
        offset = struct.unpack_from("<I", data, end + 16)[0]
        struct.pack_into("<I", data, end + 16, offset + 100)
        return bytes(data)
    compression = {
        "deflate": zipfile.ZIP_DEFLATED,
        "bzip2": zipfile.ZIP_BZIP2,
        "lzma": zipfile.ZIP_LZMA,
    }[damage]
    data = one_entry_zip(compression=compression)
    start = 30 + len("a.dcm")  # the entry's data follows its local header
    data[start : start + 8] = bytes(8)
    return bytes(data)


@pytest.mark.parametrize("damage", ["deflate", "bzip2", "lzma", "offset-outside-the-archive"])
def test_a_damaged_zip_entry_is_refused(client: TestClient, damage: str) -> None:
    response = client.post(
        "/v1/studies",
        content=damaged_zip(damage),
        headers={**AUTH, "Content-Type": "application/zip"},
    )
    body = assert_problem(response, 400)
    assert "zip entry 'a.dcm' cannot be read" in str(body["detail"])


def test_an_encrypted_zip_is_refused(client: TestClient) -> None:
    data = one_entry_zip()
    data[6] |= 1  # the encryption flag, in the local header and in the central directory
    data[data.find(b"PK\x01\x02") + 8] |= 1
    response = client.post(
        "/v1/studies", content=bytes(data), headers={**AUTH, "Content-Type": "application/zip"}
    )
    body = assert_problem(response, 400)
    assert "password-protected" in str(body["detail"])


@pytest.mark.parametrize("name", [".", "./."])
def test_a_zip_entry_named_dot_is_judged_like_any_file(client: TestClient, name: str) -> None:
    response = client.post(
        "/v1/studies",
        content=bytes(one_entry_zip(name)),
        headers={**AUTH, "Content-Type": "application/zip"},
    )
    body = assert_problem(response, 422)
    assert f"{name}: not a DICOM file" in str(body["detail"])
    assert str(client.app.state.settings.spool_dir) not in str(body)  # type: ignore[attr-defined]


def test_upload_limits(settings: Settings, ct_study: Path) -> None:
    from service.api import create_app

    small = settings.replaced(api={"max_upload_bytes": 10_000})
    with TestClient(create_app(small)) as small_client:
        body = assert_problem(upload_zip(small_client, ct_study), 413)
    assert "at most 10000 bytes" in str(body["detail"])
    assert not any(small.uploads_dir.iterdir())


def test_non_dicom_and_empty_uploads_are_refused(client: TestClient) -> None:
    headers = {**AUTH, "Content-Type": "application/dicom"}
    body = assert_problem(client.post("/v1/studies", content=b"hello", headers=headers), 422)
    assert "not a DICOM file" in str(body["detail"])
    spool = str(client.app.state.settings.spool_dir)  # type: ignore[attr-defined]
    assert spool not in str(body), body  # the client learns no server folder
    unreadable = client.post("/v1/studies", content=b"DICM" * 40, headers=headers)
    body = assert_problem(unreadable, 422)
    assert "request body: not a readable DICOM file" in str(body["detail"])
    assert spool not in str(body)
    body = assert_problem(client.post("/v1/studies", content=b"", headers=headers), 400)
    assert "empty" in str(body["detail"])
    body = assert_problem(
        client.post("/v1/studies", content=b"x", headers={**AUTH, "Content-Type": "text/csv"}), 415
    )


def test_a_study_without_a_suitable_series_is_refused(client: TestClient, tmp_path: Path) -> None:
    from tests.service.support import write_ct_series

    write_ct_series(tmp_path / "short", slices=4, size=16)  # fewer slices than the rules allow
    body = assert_problem(upload_zip(client, tmp_path / "short"), 422)
    assert "fewer than the minimum" in str(body["detail"])


# --- jobs -----------------------------------------------------------------------------------


def test_list_and_filter_jobs(client: TestClient, store: JobStore, tmp_path: Path) -> None:
    queued = stored_job(store, tmp_path)
    failed = stored_job(store, tmp_path, JobState.FAILED, error="bad input")
    listed = client.get("/v1/jobs", headers=AUTH).json()
    assert {j["id"] for j in listed["jobs"]} == {queued.id, failed.id}
    only_failed = client.get("/v1/jobs", params={"state": "failed"}, headers=AUTH).json()
    assert [j["id"] for j in only_failed["jobs"]] == [failed.id]
    assert only_failed["jobs"][0]["error"] == "bad input"


def test_cancel_a_queued_job(client: TestClient, store: JobStore, tmp_path: Path) -> None:
    job = stored_job(store, tmp_path)
    response = client.post(f"/v1/jobs/{job.id}/cancel", headers=AUTH)
    assert response.status_code == 202 and response.json()["state"] == "cancelled"
    assert_problem(client.post(f"/v1/jobs/{job.id}/cancel", headers=AUTH), 409)


def test_cancel_a_running_job_asks_the_worker(
    client: TestClient, store: JobStore, tmp_path: Path
) -> None:
    job = stored_job(store, tmp_path, JobState.RUNNING)
    response = client.post(f"/v1/jobs/{job.id}/cancel", headers=AUTH)
    assert response.json()["state"] == "running" and response.json()["cancel_requested"]
    assert_problem(client.delete(f"/v1/jobs/{job.id}", headers=AUTH), 409)


def test_delete_removes_the_record_and_files(
    client: TestClient, store: JobStore, tmp_path: Path
) -> None:
    job = stored_job(store, tmp_path, JobState.FAILED)
    (Path(job.input_dir) / "x.dcm").write_bytes(b"x")
    assert client.delete(f"/v1/jobs/{job.id}", headers=AUTH).status_code == 204
    assert not Path(job.input_dir).exists() and not Path(job.output_dir).exists()
    assert_problem(client.get(f"/v1/jobs/{job.id}", headers=AUTH), 404)


def test_results_are_409_until_succeeded_then_served(
    client: TestClient, store: JobStore, tmp_path: Path
) -> None:
    job = stored_job(store, tmp_path, JobState.RUNNING)
    body = assert_problem(client.get(f"/v1/jobs/{job.id}/seg", headers=AUTH), 409)
    assert body["state"] == "running"
    out = Path(job.output_dir)
    (out / "seg.dcm").write_bytes(b"DICM-ish")
    (out / "report.json").write_text(json.dumps({"ok": True}))
    files = {"seg": str(out / "seg.dcm"), "report": str(out / "report.json")}
    store.transition(job.id, JobState.SUCCEEDED, result_files=files)
    seg = client.get(f"/v1/jobs/{job.id}/seg", headers=AUTH)
    assert seg.status_code == 200 and seg.headers["content-type"] == "application/dicom"
    assert seg.content == b"DICM-ish"
    report = client.get(f"/v1/jobs/{job.id}/report", headers=AUTH)
    assert report.headers["content-type"] == "application/json" and report.json() == {"ok": True}
    assert_problem(client.get(f"/v1/jobs/{job.id}/preview", headers=AUTH), 404)
    view = client.get(f"/v1/jobs/{job.id}", headers=AUTH).json()
    assert set(view["results"]) == {"seg", "report"}


# --- models and metrics ---------------------------------------------------------------------


def test_models_lists_the_rule_based_segmenter(client: TestClient) -> None:
    models = client.get("/v1/models", headers=AUTH).json()["models"]
    rules = next(m for m in models if m["kind"] == "rules")
    assert rules["model_id"] == "habitus-rules" and rules["available"] and rules["version"]


def test_models_reads_manifests_without_onnxruntime(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from habitus.config import get_settings

    manifest = {
        "model_id": "unit-test-model", "version": "0.1", "file": "m.onnx", "sha256": "0" * 64,
        "labels": {str(i): n for i, n in enumerate(
            ["background", "skin", "bone", "muscle", "avf", "sf", "io", "cns"])},
        "input_spacing_mm": [3, 3, 3], "patch_size": [32, 32, 32],
        "created": "2024-01-01T00:00:00Z",
    }  # fmt: skip
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    (tmp_path / "m.onnx").write_bytes(b"not really a model")
    monkeypatch.setenv("HABITUS_MODEL_DIR", str(tmp_path))
    get_settings.cache_clear()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # importing it would now fail
    try:
        models = client.get("/v1/models", headers=AUTH).json()["models"]
    finally:
        get_settings.cache_clear()
    found = next(m for m in models if m["model_id"] == "unit-test-model")
    assert found["available"] and found["kind"] == "onnx" and found["version"] == "0.1"


def test_metrics(client: TestClient, store: JobStore, tmp_path: Path) -> None:
    stored_job(store, tmp_path)
    stored_job(store, tmp_path, JobState.FAILED)
    store.increment_instances_received(7)
    store.observe_stage_seconds("segment", 12.0)
    store.redis.rpush(store.keys.queue(ANALYZE_QUEUE), "message")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'habitus_jobs{state="queued"} 1.0' in text
    assert 'habitus_jobs{state="failed"} 1.0' in text
    assert f'habitus_queue_depth{{queue="{ANALYZE_QUEUE}"}} 1.0' in text
    assert "habitus_dicom_instances_received_total 7.0" in text
    assert 'habitus_stage_duration_seconds_bucket{le="10",stage="segment"} 0.0' in text
    assert 'habitus_stage_duration_seconds_bucket{le="30",stage="segment"} 1.0' in text
    assert 'habitus_stage_duration_seconds_count{stage="segment"} 1.0' in text


def test_metrics_can_require_a_key(settings: Settings) -> None:
    from service.api import create_app

    guarded = settings.replaced(api={"metrics_require_key": True})
    with TestClient(create_app(guarded)) as guarded_client:
        assert_problem(guarded_client.get("/metrics"), 401)
        assert guarded_client.get("/metrics", headers=AUTH).status_code == 200


def test_unexpected_errors_are_problems_without_internals(
    client: TestClient, store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(JobStore, "page", explode)
    body = assert_problem(client.get("/v1/jobs", headers=AUTH), 500)
    assert "secret" not in json.dumps(body) and body["reference"]
