"""Data flows one way (DESIGN.md §1): these tests keep the import direction honest."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

FORBIDDEN: dict[str, set[str]] = {
    # the core imports none of the other packages, and never torch (training only)
    "habitus": {"service", "worker", "model_export", "torch"},
    # service and worker share the job contract in habitus and Redis, not each other
    "service": {"worker", "model_export", "torch"},
    "worker": {"service", "model_export", "torch"},
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_forbidden_packages(package: str) -> None:
    offences = [
        f"{path.relative_to(REPO_ROOT)} imports {sorted(bad)}"
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        if (bad := imported_roots(path) & FORBIDDEN[package])
    ]
    assert not offences, "\n".join(offences)


def test_import_scanner_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import worker.app\nfrom service.api import x\nfrom . import y\n")
    assert imported_roots(sample) == {"worker", "service"}
