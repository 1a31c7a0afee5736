"""An upload while Redis is down is refused with a clear answer and leaves nothing behind;
the same upload succeeds once Redis is back (the API served by uvicorn, a Redis the test
starts and stops)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.service.live_api import LiveApi, live_api
from tests.service.support import AUTH, zip_files
from tests.worker.processes import RedisServer, private_redis_fixture  # noqa: F401

pytestmark = pytest.mark.integration


def _post(api: LiveApi, body: bytes) -> httpx.Response:
    headers = {**AUTH, "Content-Type": "application/zip"}
    return httpx.post(f"{api.url}/v1/studies", content=body, headers=headers, timeout=60)


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_an_upload_during_a_redis_outage_is_refused_and_leaves_nothing(
    tmp_path: Path, ct_study: Path, private_redis: RedisServer
) -> None:
    study = zip_files(sorted(p for p in ct_study.rglob("*") if p.is_file()), ct_study)
    with live_api(tmp_path, HABITUS_REDIS_URL=private_redis.url) as api:
        private_redis.stop()
        refused = _post(api, study)
        assert refused.status_code == 503, refused.text
        assert "Redis" in refused.text or "queue" in refused.text
        assert _files_under(api.spool / "uploads") == []
        assert _files_under(api.spool / "jobs") == []

        private_redis.start()
        accepted = _post(api, study)
        assert accepted.status_code == 202, accepted.text
