"""`habitus demo` writes a PET with complete SUV headers; `habitus analyze` measures it and prints
the SUV table, or the reason the PET was refused."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pydicom
import pytest

from habitus.cli import main

pytestmark = pytest.mark.slow

# Plausible FDG uptake (SUVbw) of each class in a fasting adult.
PLAUSIBLE = {
    "Skeletal muscle": (0.6, 1.0),
    "Abdominal visceral fat": (0.25, 0.5),
    "Subcutaneous fat": (0.2, 0.45),
    "Internal organs and vessels": (1.5, 2.5),
    "Bone": (1.2, 2.0),
}


def _run(*argv: str) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(list(argv)) == 0
    return printed.getvalue()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """(report.json's pet section, the printed summary) of `habitus demo` then `analyze`."""
    folder = tmp_path_factory.mktemp("demo-pet")
    _run("demo", str(folder / "study"))
    printed = _run("analyze", str(folder / "study"), "--out", str(folder / "result"))
    return json.loads((folder / "result" / "report.json").read_text())["pet"], printed


def test_the_demo_pet_is_measured_with_plausible_suvs(demo: tuple[dict[str, Any], str]) -> None:
    pet, _ = demo
    assert pet["found"] and pet["analysed"], (pet["refusal"], pet["reason"])
    assert pet["calibration"]["units"] == "BQML"
    assert pet["calibration"]["injected_dose_mbq"] == pytest.approx(370.0)
    regions = {region["name"]: region for region in pet["regions"]}
    for name in ("torso", "waist", "l3"):
        assert regions[name]["available"], regions[name]["reason"]
        means = {row["name"]: row["suv_mean"] for row in regions[name]["classes"]}
        for tissue, (low, high) in PLAUSIBLE.items():
            assert means[tissue] is not None and low <= means[tissue] <= high, (name, tissue)


def test_analyze_prints_the_suv_table(demo: tuple[dict[str, Any], str]) -> None:
    _, printed = demo
    assert "PET series 6 'PET AC': BQML" in printed
    assert "PET uptake per tissue, SUVbw (g/ml)" in printed
    assert "SUVmean" in printed and "SUVpeak" in printed
    for region in ("torso", "waist", "L3"):
        assert f"│ {region} " in printed
    muscle = [line for line in printed.splitlines() if "Skeletal muscle" in line and "│" in line]
    assert len(muscle) >= 3  # one row per region, and one in the volume table
    assert "refused" not in printed


def test_a_pet_without_dose_prints_the_refusal_once(tmp_path: Path) -> None:
    _run("demo", str(tmp_path / "study"), "--slices", "24", "--rows", "64")
    for path in (tmp_path / "study").rglob("PT*.dcm"):
        ds = pydicom.dcmread(path)
        del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose
        ds.save_as(path)
    printed = _run("analyze", str(tmp_path / "study"), "--out", str(tmp_path / "result"))
    assert printed.count("PET uptake refused (dose_missing)") == 1
    assert "SUVmean" not in printed
