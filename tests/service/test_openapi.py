"""openapi.yaml in the repository is the contract: it must equal what the app serves."""

from __future__ import annotations

import yaml

from service.api.openapi import openapi_document, openapi_yaml
from tests.conftest import REPO_ROOT

EXPORT_COMMAND = "python -m service.api.openapi > openapi.yaml"


def test_openapi_yaml_matches_the_app() -> None:
    committed = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    assert committed == openapi_document(), f"openapi.yaml is stale; run: {EXPORT_COMMAND}"


def test_export_round_trips() -> None:
    assert yaml.safe_load(openapi_yaml()) == openapi_document()


def test_every_v1_route_declares_bearer_auth_and_problem_responses() -> None:
    paths = openapi_document()["paths"]
    for path, operations in paths.items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            assert operation.get("security") == [{"HTTPBearer": []}], f"{method} {path}"
            assert "application/problem+json" in operation["responses"]["401"]["content"]
