"""`habitus demo` then `habitus analyze`, both with their defaults, as the README starts.

The demo study must show what the product measures: the waist from the last rib to the iliac
crest, L3 inside it, the average areas, the indices from the header's height, weight and sex,
and both flags decided.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from habitus.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    """(report.json, the printed summary) of the README's first two commands."""
    folder = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["demo", str(folder / "study")]) == 0
        assert main(["analyze", str(folder / "study"), "--out", str(folder / "result")]) == 0
    report = json.loads((folder / "result" / "report.json").read_text())
    return report, printed.getvalue(), folder


def test_the_demo_is_analysed_by_the_rules(demo_run: tuple[dict[str, Any], str, Path]) -> None:
    report, _, _ = demo_run
    assert report["model"]["model_id"] == "habitus-rules"


def test_the_waist_runs_from_the_last_rib_to_the_iliac_crest_and_holds_l3(
    demo_run: tuple[dict[str, Any], str, Path],
) -> None:
    composition = demo_run[0]["body_composition"]
    marks = composition["landmarks"]
    rib, crest, l3 = marks["last_rib"], marks["iliac_crest"], marks["l3"]
    assert rib["present"] and crest["present"] and l3["present"]
    waist = composition["waist"]
    assert waist["available"], waist["reason"]
    assert waist["range"]["z_mm"] == [crest["z_mm"], rib["z_mm"]]
    assert 6.0 <= waist["length_cm"] <= 15.0
    bottom, top = l3["extent_z_mm"]
    assert crest["z_mm"] < bottom < l3["z_mm"] < top < rib["z_mm"]
    assert composition["l3"]["available"]
    assert composition["landmarks"]["findings"] == []


def test_areas_indices_and_flags_are_measured_and_plausible(
    demo_run: tuple[dict[str, Any], str, Path],
) -> None:
    composition = demo_run[0]["body_composition"]
    waist, l3 = composition["waist"], composition["l3"]
    assert 80.0 <= waist["average_sma_cm2"] <= 250.0
    assert 100.0 <= waist["average_bfa_cm2"] <= 600.0
    assert 25.0 <= waist["smi_cm2_m2"] <= 80.0  # height 1.75 m from PatientSize
    assert 1.0 <= waist["bfi_cm2_kg"] <= 10.0  # weight 75 kg from PatientWeight
    assert 80.0 <= l3["sma_cm2"] <= 250.0
    assert 30.0 <= l3["vat_cm2"] <= 350.0 and 30.0 <= l3["sat_cm2"] <= 350.0
    flags = composition["flags"]
    for name, index in (("low_smi", "smi_cm2_m2"), ("high_bfi", "bfi_cm2_kg")):
        flag = flags[name]
        assert flag["sex"] == "M" and flag["value"] in (True, False), flag["reason"]
        assert flag["measured"] == waist[index]


def test_the_summary_prints_the_measurements(demo_run: tuple[dict[str, Any], str, Path]) -> None:
    _, printed, _ = demo_run
    assert "not measured" not in printed and "unknown" not in printed
    assert "waist (" in printed and "SMI" in printed and "BFI" in printed
    assert "low SMI: " in printed and "high BFI: " in printed


def test_another_height_gives_another_sr_and_the_same_seg(
    demo_run: tuple[dict[str, Any], str, Path],
) -> None:
    import pydicom

    report, _, folder = demo_run
    assert report["body_composition"]["waist"]["smi_cm2_m2"] is not None
    with contextlib.redirect_stdout(io.StringIO()):
        out = folder / "result-150cm"
        assert main(["analyze", str(folder / "study"), "--out", str(out), "--height", "150"]) == 0
    before, after = folder / "result", out
    seg_uids = {pydicom.dcmread(p / "seg.dcm").SOPInstanceUID for p in (before, after)}
    sr_uids = {pydicom.dcmread(p / "sr.dcm").SOPInstanceUID for p in (before, after)}
    assert len(seg_uids) == 1  # the segmentation does not depend on the height
    assert len(sr_uids) == 2  # the SMI in the SR does
