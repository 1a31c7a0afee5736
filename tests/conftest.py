"""Fixtures shared by every test package."""

import os
from pathlib import Path
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def missing(what: str) -> NoReturn:
    """Skip a test that lacks data, a tool or a service; under CI (CI=true) fail instead, so
    that a run cannot pass by skipping what it was meant to exercise."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI=true: a missing requirement is a failure)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real scans beside the checkout (../shared/data)."""
    if not SHARED_DATA.is_dir():
        missing(f"real test scans not found at {SHARED_DATA} (expected ../shared/data)")
    return SHARED_DATA
