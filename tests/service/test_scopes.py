"""API keys with scopes and owners, over the running app and a real Redis.

A key sees, lists and downloads its own jobs unless it has read:all; another owner's job is
answered exactly as a job that does not exist (404), so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from habitus.jobs import JobRecord, JobState, JobStore, Origin, OriginKind
from habitus.settings import ApiKeySpec, ApiSettings, Scope, Settings
from service.api import create_app
from service.apikeys import key_digest
from tests.service.support import zip_files

KEYS = {
    "admin": "admin-key-0123456789",
    "ris": "ris-key-0123456789",
    "viewer": "viewer-key-0123456789",
    "modality": "modality-key-0123456789",
    "other": "other-key-0123456789",
}
PROBLEM = "application/problem+json"


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


@pytest.fixture
def scoped(settings: Settings) -> Iterator[TestClient]:
    def spec(name: str, *scopes: Scope) -> ApiKeySpec:
        return ApiKeySpec(sha256=key_digest(KEYS[name]), scopes=frozenset(scopes))

    keys = {
        "admin": SecretStr(KEYS["admin"]),  # a bare key: every scope, as before scopes
        "ris": spec("ris", Scope.SUBMIT, Scope.READ_OWN, Scope.DELETE),
        "viewer": spec("viewer", Scope.READ_ALL),
        "modality": spec("modality", Scope.SUBMIT),
        "other": ApiKeySpec(key=SecretStr(KEYS["other"]), scopes=frozenset({Scope.READ_OWN})),
    }
    with TestClient(
        create_app(settings.replaced(api={"api_keys": keys})), raise_server_exceptions=False
    ) as client:
        yield client


def owned_job(store: JobStore, tmp_path: Path, owner: str, state: JobState) -> JobRecord:
    folder = tmp_path / "jobs" / owner.replace(":", "_") / state.value
    (folder / "output").mkdir(parents=True)
    (folder / "input").mkdir()
    (folder / "output" / "report.json").write_text('{"ok": true}')
    kind = OriginKind.DICOM if owner.startswith("node:") else OriginKind.REST
    record = store.create(
        JobRecord(
            input_dir=str(folder / "input"),
            output_dir=str(folder / "output"),
            origin=Origin(kind=kind, client=owner, calling_ae_title=owner[5:]),
        )
    )
    assert record.owner == owner
    if state != JobState.QUEUED:
        store.transition(record.id, JobState.RUNNING)
        files = {"report": str(folder / "output" / "report.json")}
        store.transition(record.id, state, result_files=files)
    return store.get(record.id)


def not_found(response: httpx.Response, job_id: str) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == f"no job with id {job_id!r}"


def test_a_key_sees_lists_and_downloads_only_its_own_jobs(
    scoped: TestClient, store: JobStore, tmp_path: Path
) -> None:
    mine = owned_job(store, tmp_path, "ris", JobState.SUCCEEDED)
    theirs = owned_job(store, tmp_path, "other", JobState.SUCCEEDED)
    pacs = owned_job(store, tmp_path, "node:PACS", JobState.SUCCEEDED)
    listed = scoped.get("/v1/jobs", headers=auth("ris")).json()
    assert [j["id"] for j in listed["jobs"]] == [mine.id]
    assert scoped.get(f"/v1/jobs/{mine.id}/report", headers=auth("ris")).json() == {"ok": True}
    never = "0" * 32
    for job_id in (theirs.id, pacs.id, never):  # someone else's job reads as no job at all
        for path in ("", "/report", "/seg", "/sr", "/preview"):
            not_found(scoped.get(f"/v1/jobs/{job_id}{path}", headers=auth("ris")), job_id)
    everyone = scoped.get("/v1/jobs", headers=auth("viewer")).json()
    assert {j["id"] for j in everyone["jobs"]} == {mine.id, theirs.id, pacs.id}
    assert scoped.get(f"/v1/jobs/{pacs.id}/report", headers=auth("viewer")).status_code == 200
    assert scoped.get(f"/v1/jobs/{pacs.id}", headers=auth("viewer")).json()["origin"] == {
        "kind": "dicom", "calling_ae_title": "PACS", "client": "node:PACS",
    }  # fmt: skip


def test_cancel_and_delete_need_the_delete_scope_and_the_job(
    scoped: TestClient, store: JobStore, tmp_path: Path
) -> None:
    mine = owned_job(store, tmp_path, "ris", JobState.QUEUED)
    theirs = owned_job(store, tmp_path, "other", JobState.QUEUED)
    done = owned_job(store, tmp_path, "other", JobState.FAILED)
    not_found(scoped.post(f"/v1/jobs/{theirs.id}/cancel", headers=auth("ris")), theirs.id)
    not_found(scoped.delete(f"/v1/jobs/{done.id}", headers=auth("ris")), done.id)
    assert store.get(theirs.id).state == JobState.QUEUED and store.get(done.id)
    for name in ("viewer", "other"):  # sees the job, may not cancel or delete
        forbidden = scoped.post(f"/v1/jobs/{theirs.id}/cancel", headers=auth(name))
        assert forbidden.status_code == 403 and forbidden.json()["scope"] == "delete"
        assert scoped.delete(f"/v1/jobs/{done.id}", headers=auth(name)).status_code == 403
    assert store.get(theirs.id).state == JobState.QUEUED and store.get(done.id)
    cancelled = scoped.post(f"/v1/jobs/{mine.id}/cancel", headers=auth("ris"))
    assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"
    assert scoped.delete(f"/v1/jobs/{done.id}", headers=auth("admin")).status_code == 204
    assert not Path(done.output_dir).exists()


def test_a_key_without_submit_cannot_upload(
    scoped: TestClient, store: JobStore, settings: Settings, ct_study: Path
) -> None:
    files = sorted(p for p in ct_study.rglob("*") if p.is_file())
    response = scoped.post(
        "/v1/studies",
        content=zip_files(files, ct_study),
        headers={**auth("viewer"), "Content-Type": "application/zip"},
    )
    assert response.status_code == 403 and response.headers["content-type"] == PROBLEM
    assert "lacks the scope 'submit'" in response.json()["detail"]
    assert store.list() == []
    assert not any(settings.uploads_dir.glob("*"))  # refused before a byte was spooled


def test_an_upload_belongs_to_the_key_that_sent_it(
    scoped: TestClient, store: JobStore, ct_study: Path
) -> None:
    files = sorted(p for p in ct_study.rglob("*") if p.is_file())
    response = scoped.post(
        "/v1/studies",
        content=zip_files(files, ct_study),
        headers={**auth("modality"), "Content-Type": "application/zip"},
    )
    assert response.status_code == 202, response.text
    [job_id] = response.json()["job_ids"]
    assert store.get(job_id).owner == "modality"
    # submit alone does not read, not even its own jobs
    assert scoped.get(f"/v1/jobs/{job_id}", headers=auth("modality")).status_code == 403
    assert scoped.get("/v1/jobs", headers=auth("modality")).status_code == 403


def test_pages_of_the_api_follow_the_cursor(
    scoped: TestClient, store: JobStore, tmp_path: Path
) -> None:
    jobs = [owned_job(store, tmp_path / str(n), "ris", JobState.QUEUED) for n in range(5)]
    owned_job(store, tmp_path, "other", JobState.QUEUED)
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = scoped.get("/v1/jobs", params=params, headers=auth("ris")).json()
        assert page["count"] == len(page["jobs"]) <= 2
        seen += [j["id"] for j in page["jobs"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [j.id for j in reversed(jobs)]
    bad = scoped.get("/v1/jobs", params={"cursor": "nonsense"}, headers=auth("ris"))
    assert bad.status_code == 422 and "expected a cursor" in bad.json()["detail"]


def test_unknown_and_wrong_keys_are_401(scoped: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer " + key_digest(KEYS["ris"])}):
        assert scoped.get("/v1/jobs", headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"node:PACS": "k"}, "API key names must match"),
        ({"": "k"}, "API key names must match"),
        ({"a": {"scopes": ["submit"]}}, "either as 'sha256'"),
        ({"a": {"key": "k", "sha256": "0" * 64, "scopes": ["submit"]}}, "either as 'sha256'"),
        ({"a": {"key": "k", "scopes": []}}, "at least 1"),
        ({"a": {"key": "k", "scopes": ["write"]}}, "read:own"),
        ({"a": {"sha256": "abc", "scopes": ["admin"]}}, "pattern"),
    ],
)
def test_key_settings_are_checked_at_start_up(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ApiSettings.model_validate({"api_keys": keys})
