"""The PET part through the whole pipeline, on synthetic PET-CT studies of known uptake.

The CT is the trunk phantom; a segmenter returning its true labels isolates the uptake
measurement from segmentation quality. PET activity is painted per tissue at the SUVs of
``TYPICAL_SUV``, blurred (6 mm FWHM), averaged into voxels of twice the CT spacing and given
noise. Tolerances: SUVmean within 5 %, SUVmax within 10 % of the painted SUV.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from habitus.labels import Tissue
from habitus.outputs.report import REPORT_SCHEMA_VERSION
from habitus.pet.schema import PetSection
from habitus.phantoms.pet import TYPICAL_SUV, PetHeader
from habitus.pipeline import AnalysisOptions, AnalysisResult, analyze
from habitus.uids import derived_uid
from tests.pet.study import Study, add_pet, write_ct
from tests.segment.known_labels import KnownLabels

MIN_VOXELS = 20  # classes measured on fewer PET voxels are not held to the tolerance


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> Study:
    return write_ct(tmp_path_factory.mktemp("petct"))


def run(ct: Study, tmp_path: Path, *headers: PetHeader, **pet: object) -> AnalysisResult:
    """Analyse the CT with one PET series per header (series 6, 7, ...) beside it."""
    study = Study(tmp_path, ct.labels, ct.geometry)
    for number, header in enumerate(headers, start=6):
        add_pet(study, header, number=number, **pet)  # type: ignore[arg-type]
    sources = [ct.root / "ct", *sorted(tmp_path.glob("pet*"))]
    return analyze(sources, tmp_path / "out", AnalysisOptions(), segmenter=KnownLabels(ct.labels))


def assert_recovered(pet: PetSection) -> None:
    assert pet.analysed, pet.reason
    measured = 0
    for region in pet.regions:
        assert region.available, (region.name, region.reason)
        for row in region.classes:
            if row.voxels < MIN_VOXELS:
                continue
            truth = TYPICAL_SUV[Tissue(row.label)]
            assert row.suv_mean == pytest.approx(truth, rel=0.05), (region.name, row)
            assert row.suv_max == pytest.approx(truth, rel=0.10), (region.name, row)
            measured += 1
    # muscle, both fats, organs and bone over the scan, the torso and the waist at least
    assert measured >= 15


@pytest.mark.parametrize(
    "header",
    [
        PetHeader(),
        PetHeader(decay_correction="ADMIN"),
        PetHeader(injection_as_datetime=False, uptake_s=5400.0),
        PetHeader(units="CNTS", philips_suv_factor=2.5e-4),
    ],
    ids=["bqml-start", "bqml-admin", "start-time-only", "cnts-philips"],
)
def test_suv_per_tissue_recovers_the_painted_uptake(
    ct: Study, tmp_path: Path, header: PetHeader
) -> None:
    result = run(ct, tmp_path, header)
    pet = result.report.pet
    assert pet is not None
    assert_recovered(pet)
    assert [r.name for r in pet.regions] == ["scan", "torso", "waist", "l3"]
    assert pet.calibration is not None and pet.calibration.units == header.units
    assert pet.liver_reference is not None and not pet.liver_reference.available


def test_report_json_carries_the_pet_section(ct: Study, tmp_path: Path) -> None:
    result = run(ct, tmp_path, PetHeader(), PetHeader(corrected_image=("DECY",)))
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert written["schema_version"] == REPORT_SCHEMA_VERSION == "1.4.0"
    pet = written["pet"]
    assert pet["unit"] == "{SUVbw}g/ml"
    assert pet["chosen_series"]["series_number"] == 6  # the NAC series 7 is refused
    (nac,) = pet["other_series"]
    assert "lacks ATTN" in nac["reasons"][0]
    calibration = pet["calibration"]
    assert calibration["decay_time_s"] == 3600.0
    assert calibration["decayed_dose_mbq"] == pytest.approx(253.314, abs=1e-3)
    # SUL = SUV x LBM / W: a man of 75 kg and 175 cm has an LBM of 58.08 kg
    assert calibration["lean_body_mass_kg"] == pytest.approx(58.08, abs=0.01)
    muscle = next(r for r in pet["regions"][0]["classes"] if r["label"] == Tissue.MUSCLE)
    assert muscle["sul_mean"] == pytest.approx(muscle["suv_mean"] * 58.08 / 75.0, abs=2e-3)
    assert result.report.input.chosen_series is not None
    assert result.report.input.chosen_series.modality == "CT"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (PetHeader(dose_bq=None), "dose_missing"),
        (PetHeader(uptake_s=-600.0), "injection_after_acquisition"),
        (PetHeader(units="PROPCNTS"), "units_unsupported"),
        (PetHeader(units="CNTS"), "scale_factor_missing"),
        (PetHeader(half_life_s=None), "half_life_missing"),
    ],
    ids=[
        "no-dose",
        "injected-after-scan",
        "unknown-units",
        "counts-without-factor",
        "no-half-life",
    ],
)
def test_faulty_headers_refuse_the_pet_and_deliver_the_ct(
    ct: Study, tmp_path: Path, header: PetHeader, code: str
) -> None:
    result = run(ct, tmp_path, header)
    pet = result.report.pet
    assert pet is not None and pet.found and not pet.analysed
    assert pet.refusal == code
    assert pet.regions == []
    assert any(w.startswith(f"PET uptake refused ({code})") for w in result.report.warnings)
    body = result.report.body_composition
    assert body is not None and body.waist.available
    assert {"seg", "sr", "report"} <= set(result.files)


def test_a_study_without_pet_is_analysed_as_before(ct: Study, tmp_path: Path) -> None:
    result = analyze(
        ct.root / "ct", tmp_path / "out", AnalysisOptions(), segmenter=KnownLabels(ct.labels)
    )
    pet = result.report.pet
    assert pet is not None and not pet.found and not pet.analysed
    assert pet.reason == "no PET series in the study"
    assert not any("PET" in w for w in result.report.warnings)
    assert result.report.body_composition is not None


def test_pet_of_another_frame_that_overlaps_is_taken_with_a_warning(
    ct: Study, tmp_path: Path
) -> None:
    result = run(ct, tmp_path, PetHeader(), frame_uid=derived_uid("another-frame"))
    pet = result.report.pet
    assert pet is not None and pet.chosen_series is not None
    assert not pet.chosen_series.same_frame_of_reference
    assert any("another frame of reference" in w for w in result.report.warnings)
    assert_recovered(pet)


def test_pet_of_another_study_is_not_taken(ct: Study, tmp_path: Path) -> None:
    result = run(ct, tmp_path, PetHeader(), study_uid=derived_uid("another-study"))
    pet = result.report.pet
    assert pet is not None and not pet.found
    assert pet.reason is not None and "another study than the CT's" in pet.reason


def test_sr_carries_suv_per_tissue_referencing_the_pet(ct: Study, tmp_path: Path) -> None:
    import pydicom

    from tests.outputs.conftest import content_items, dciodvfy_errors

    result = run(ct, tmp_path, PetHeader())
    pet = result.report.pet
    assert pet is not None and pet.chosen_series is not None
    sr_path = result.files["sr"]
    assert dciodvfy_errors(sr_path) == []
    dataset = pydicom.dcmread(sr_path)
    titles = [
        item.ContentSequence[0].TextValue
        for item in content_items(dataset, "Measurement Group")
        if item.ContentSequence[0].ConceptNameCodeSequence[0].CodeMeaning == "Tracking Identifier"
    ]
    assert "PET uptake: waist (last rib to iliac crest)" in titles
    suvs = content_items(dataset, "SUVbw")
    units = {s.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue for s in suvs}
    assert units == {"{SUVbw}g/ml"}
    # every SUV references PET images, and the PET series is among the SR's evidence
    pet_uid = pet.chosen_series.series_instance_uid
    evidence = {
        series.SeriesInstanceUID
        for study in dataset.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
    }
    assert pet_uid in evidence
    waist = next(r for r in pet.regions if r.name == "waist")
    muscle = next(r for r in waist.classes if r.label == Tissue.MUSCLE)
    values = [float(s.MeasuredValueSequence[0].NumericValue) for s in suvs]
    assert muscle.suv_mean in values
    assert all(len(content_items(s, "Source of Measurement")) > 0 for s in suvs)


def test_unreadable_pet_pixels_refuse_the_pet_and_deliver_the_ct(ct: Study, tmp_path: Path) -> None:
    study = Study(tmp_path, ct.labels, ct.geometry)
    add_pet(study, PetHeader())
    damaged = sorted((tmp_path / "pet6").glob("*.dcm"))[10]
    damaged.write_bytes(damaged.read_bytes()[:-5000])  # pixel data cut short, header intact
    result = analyze(
        [ct.root / "ct", tmp_path / "pet6"],
        tmp_path / "out",
        AnalysisOptions(),
        segmenter=KnownLabels(ct.labels),
    )
    pet = result.report.pet
    assert pet is not None and pet.found and not pet.analysed
    assert pet.refusal == "pixels_unreadable"
    assert damaged.name in (pet.reason or "")
    assert result.report.body_composition is not None and "sr" in result.files


def test_caller_weight_and_height_give_suv_and_sul(ct: Study, tmp_path: Path) -> None:
    study = Study(tmp_path, ct.labels, ct.geometry)
    add_pet(study, PetHeader(weight_kg=None, height_m=None))  # the PET header lacks both
    options = AnalysisOptions(weight_kg=75.0, height_cm=175.0, sex="M")
    result = analyze(
        [ct.root / "ct", tmp_path / "pet6"],
        tmp_path / "out",
        options,
        segmenter=KnownLabels(ct.labels),
    )
    pet = result.report.pet
    assert pet is not None and pet.calibration is not None
    assert (pet.calibration.weight_kg, pet.calibration.weight_source) == (75.0, "caller")
    assert pet.calibration.lean_body_mass_kg == pytest.approx(58.08, abs=0.01)
    assert_recovered(pet)
