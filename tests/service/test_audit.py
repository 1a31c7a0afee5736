"""The audit log of a running API server (uvicorn, as the image runs it), read from its
stderr and from HABITUS_AUDIT_LOG_FILE: one JSON line per upload, download, cancel, delete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from habitus.jobs import JobRecord, JobState, JobStore, Origin, OriginKind
from tests.conftest import REPO_ROOT
from tests.service.support import API_KEY, AUTH, TEST_REDIS_URL, zip_files
from tests.service.test_serve import free_port, wait_for

pytestmark = [pytest.mark.integration]

READER_KEY = "reader-key-0123456789"


@pytest.fixture
def server(tmp_path: Path, redis_client: redis.Redis) -> Iterator[tuple[str, Path, Path]]:
    """(base URL, stderr file, audit file) of `uvicorn service.api:create_app --factory`."""
    port = free_port()
    keys = {"tests": API_KEY, "reader": {"key": READER_KEY, "scopes": ["read:own"]}}
    env = {
        **os.environ,
        "HABITUS_REDIS_URL": TEST_REDIS_URL,
        "HABITUS_SPOOL_DIR": str(tmp_path / "spool"),
        "HABITUS_API_KEYS": json.dumps(keys),
        "HABITUS_AUDIT_LOG_FILE": str(tmp_path / "audit" / "audit.log"),
    }
    stderr = tmp_path / "stderr.log"
    with stderr.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "service.api:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT, env=env, stdout=err, stderr=err,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 30, "the API")
        yield base, stderr, tmp_path / "audit" / "audit.log"
    finally:
        process.terminate()
        process.wait(timeout=20)


def audit_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"time"')]


def a_job(store: JobStore, tmp_path: Path, state: JobState) -> JobRecord:
    folder = tmp_path / "jobs" / state.value
    (folder / "output").mkdir(parents=True)
    (folder / "input").mkdir()
    (folder / "output" / "seg.dcm").write_bytes(b"DICM-ish")
    record = store.create(
        JobRecord(
            input_dir=str(folder / "input"),
            output_dir=str(folder / "output"),
            origin=Origin(kind=OriginKind.REST, client="tests"),
        )
    )
    if state != JobState.QUEUED:
        store.transition(record.id, JobState.RUNNING)
        files = {"seg": str(folder / "output" / "seg.dcm")}
        store.transition(record.id, state, result_files=files)
    return record


def test_one_audit_line_per_action(
    server: tuple[str, Path, Path], store: JobStore, tmp_path: Path, ct_study: Path
) -> None:
    base, stderr, audit_file = server
    done = a_job(store, tmp_path, JobState.SUCCEEDED)
    queued = a_job(store, tmp_path, JobState.QUEUED)
    reader = {"Authorization": f"Bearer {READER_KEY}"}
    files = sorted(p for p in ct_study.rglob("*") if p.is_file())
    upload = httpx.post(
        f"{base}/v1/studies",
        content=zip_files(files, ct_study),
        headers={**AUTH, "Content-Type": "application/zip"},
        timeout=60,
    )
    assert upload.status_code == 202, upload.text
    boundary = "stowboundary"
    parts = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p.read_bytes()
        + b"\r\n"
        for p in files
    )  # fmt: skip
    stow = httpx.post(
        f"{base}/v1/studies",
        content=parts + f"--{boundary}--\r\n".encode(),
        headers={
            **AUTH,
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
        timeout=60,
    )
    assert stow.status_code == 200, stow.text  # STOW-RS: job ids in a header, not the body
    answers = [
        httpx.get(f"{base}/v1/jobs/{done.id}/seg", headers=AUTH),  # download
        httpx.get(f"{base}/v1/jobs/{done.id}/seg", headers=reader),  # not the reader's job
        httpx.post(f"{base}/v1/jobs/{queued.id}/cancel", headers=AUTH),
        httpx.delete(f"{base}/v1/jobs/{done.id}", headers=reader),  # no delete scope
        httpx.delete(f"{base}/v1/jobs/{done.id}"),  # no key
        httpx.delete(f"{base}/v1/jobs/{done.id}", headers=AUTH),
        httpx.get(f"{base}/v1/jobs", headers=AUTH),  # not audited: listing
        httpx.get(f"{base}/v1/jobs/{done.id}", headers=AUTH),  # not audited: status
    ]
    assert [a.status_code for a in answers] == [200, 404, 202, 403, 401, 204, 200, 404]

    expected = [
        ("upload", "ok", "tests", None, 202),
        ("upload", "ok", "tests", None, 200),
        ("download", "ok", "tests", done.id, 200),
        ("download", "not-found", "reader", done.id, 404),
        ("cancel", "ok", "tests", queued.id, 202),
        ("delete", "denied", "reader", done.id, 403),
        ("delete", "denied", None, done.id, 401),
        ("delete", "ok", "tests", done.id, 204),
    ]

    def complete() -> list[dict[str, Any]] | None:
        lines = audit_lines(stderr.read_text())
        return lines if len(lines) >= len(expected) else None

    lines = wait_for(complete, 10, "the audit lines")
    assert [
        (line["action"], line["outcome"], line["key"], line["job_id"], line["status"])
        for line in lines
    ] == expected
    assert lines[0]["job_ids"] == upload.json()["job_ids"]
    assert lines[1]["job_ids"] == stow.headers["habitus-job-ids"].split(", ")
    assert len(lines[1]["job_ids"]) == 1
    assert all(line["client"] == "127.0.0.1" and line["time"].endswith("Z") for line in lines)
    assert API_KEY not in stderr.read_text() and READER_KEY not in stderr.read_text()
    assert audit_lines(audit_file.read_text()) == lines  # the file holds the same lines
