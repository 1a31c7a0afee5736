"""Results go only to configured DICOM nodes: a client names a node, never an address."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from habitus.jobs import ANALYZE_QUEUE, JobStore
from habitus.settings import Settings
from tests.service.test_api import assert_problem, upload_zip


@pytest.mark.parametrize(
    "destinations",
    [
        ["127.0.0.1:11112"],  # the configured node's address
        ["PACS@127.0.0.1:11112"],
        ["PACS"],  # its AE title: only the node's name selects it
        ["10.66.0.1"],
        ["pacs", "attacker.example:104"],  # one unknown name refuses the whole request
    ],
)
def test_a_destination_that_is_not_a_configured_node_name_is_refused(
    client: TestClient,
    ct_study: Path,
    store: JobStore,
    settings: Settings,
    destinations: list[str],
) -> None:
    body = assert_problem(upload_zip(client, ct_study, destination=destinations), 422)
    assert body["type"].endswith("unknown-destination")
    assert "known DICOM nodes: pacs" in str(body["detail"])
    # refused before anything was queued or kept
    assert store.list() == []
    assert store.redis.llen(store.keys.queue(ANALYZE_QUEUE)) == 0
    assert not settings.uploads_dir.exists() or not any(settings.uploads_dir.iterdir())
