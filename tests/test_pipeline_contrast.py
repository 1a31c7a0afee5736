"""The contrast phase through habitus.pipeline.analyze: report.json, DICOM SR, warnings, preview.

The real PET-CT is a portal-venous scan; an arterial version of the unenhanced upper abdomen,
painted from its reference structures and written as DICOM, gives an arterial run.
"""

import json
from pathlib import Path

import pydicom
import pytest

from habitus.metrics.contrast import ContrastPhase
from habitus.phantoms.write_dicom import write_series
from habitus.pipeline import AnalysisOptions, AnalysisResult, analyze
from tests.outputs.conftest import dciodvfy_errors
from tests.segment.rules.realdata import upper_abdomen, with_contrast

RULES = AnalysisOptions(segmenter="rules", device="cpu")


@pytest.fixture(scope="module")
def portal_venous_run(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> AnalysisResult:
    out = tmp_path_factory.mktemp("petct-contrast")
    return analyze(shared_data / "ts-petct-dicom" / "series", out, RULES)


@pytest.fixture(scope="module")
def arterial_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> AnalysisResult:
    case = with_contrast(upper_abdomen(shared_data), ContrastPhase.ARTERIAL)
    root = tmp_path_factory.mktemp("arterial")
    write_series(
        root / "ct",
        case.volume.hu,
        case.volume.geometry,
        series_description="Upper abdomen, arterial (painted)",
        slice_thickness=3.0,
    )
    return analyze(root / "ct", root / "out", RULES)


def _contrast_group(sr: pydicom.Dataset) -> pydicom.Dataset:
    """The measurement group whose tracking identifier names the contrast phase."""
    for container in sr.ContentSequence:
        for group in container.get("ContentSequence", []):
            for item in group.get("ContentSequence", []):
                if getattr(item, "TextValue", "") == "Intravenous contrast phase":
                    return group
    raise AssertionError("no contrast phase group in the SR")


def _sr_phase_and_sites(path: Path) -> tuple[str, dict[str, float]]:
    group = _contrast_group(pydicom.dcmread(path))
    phase = ""
    sites: dict[str, float] = {}
    for item in group.ContentSequence:
        name = item.ConceptNameCodeSequence[0].CodeMeaning
        if name == "Contrast Phase":
            phase = str(item.ConceptCodeSequence[0].CodeValue)
        if name == "Attenuation Coefficient":
            site = next(
                m.ConceptCodeSequence[0].CodeMeaning
                for m in item.ContentSequence
                if m.ConceptNameCodeSequence[0].CodeMeaning == "Finding Site"
            )
            derivation = next(
                m.ConceptCodeSequence[0].CodeMeaning
                for m in item.ContentSequence
                if m.ConceptNameCodeSequence[0].CodeMeaning == "Derivation"
            )
            assert derivation == "Median"
            sites[site] = float(item.MeasuredValueSequence[0].NumericValue)
    return phase, sites


@pytest.mark.parametrize(
    ("run", "phase", "code"),
    [
        ("portal_venous_run", ContrastPhase.PORTAL_VENOUS, "PORTALVENOUS"),
        ("arterial_run", ContrastPhase.ARTERIAL, "ARTERIAL"),
    ],
)
def test_report_and_sr_carry_phase_and_evidence(
    request: pytest.FixtureRequest, run: str, phase: ContrastPhase, code: str
) -> None:
    result: AnalysisResult = request.getfixturevalue(run)
    body = json.loads(result.files["report"].read_text())["body_composition"]
    contrast = body["contrast"]
    assert contrast["phase"] == phase.value and contrast["enhanced"] is True
    evidence = {e["structure"]: e for e in contrast["evidence"]}
    assert evidence["aorta"]["found"] and evidence["liver"]["found"]
    assert evidence["aorta"]["slices"] and evidence["aorta"]["z_mm"]
    # the review flag says why: contrast, and what it does to the figures
    assert body["quality"]["review_required"]
    [reason] = [r for r in body["quality"]["review_reasons"] if "contrast" in r]
    assert "not comparable with unenhanced norms" in reason
    assert reason in result.report.warnings
    assert any(line.startswith("contrast: ") for line in body["summary_lines"])  # preview text

    sr_phase, sites = _sr_phase_and_sites(result.files["sr"])
    assert sr_phase == code
    assert sites["Aorta"] == pytest.approx(evidence["aorta"]["median_hu"])
    assert sites["Liver"] == pytest.approx(evidence["liver"]["median_hu"])
    assert dciodvfy_errors(result.files["sr"]) == []


def test_real_portal_venous_figures(portal_venous_run: AnalysisResult) -> None:
    """The PET-CT's references: aorta about 151 HU, liver about 93 HU."""
    body = portal_venous_run.report.body_composition
    assert body is not None and body.contrast is not None
    assert body.contrast.median_hu("aorta") == pytest.approx(151.0, abs=15.0)
    assert body.contrast.median_hu("liver") == pytest.approx(93.0, abs=8.0)
