"""habitus.pipeline.analyze end to end, on the real PET-CT series and on NIfTI input."""

import json
from pathlib import Path

import numpy as np
import pytest

from habitus.dicom import load_ct
from habitus.outputs.report import Report
from habitus.outputs.seg import read_label_map
from habitus.pipeline import AnalysisOptions, AnalysisResult, analyze
from habitus.progress import Stage, overall_percent
from tests.outputs.conftest import dciodvfy_errors

RULES = AnalysisOptions(segmenter="rules", device="cpu")


@pytest.fixture(scope="module")
def petct_run(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[AnalysisResult, list[tuple[Stage, float]]]:
    events: list[tuple[Stage, float]] = []
    out = tmp_path_factory.mktemp("petct")
    result = analyze(
        shared_data / "ts-petct-dicom" / "series",
        out,
        RULES,
        progress=lambda stage, fraction: events.append((stage, fraction)),
    )
    return result, events


def test_writes_seg_sr_report_and_preview(petct_run: tuple[AnalysisResult, list]) -> None:
    result, _ = petct_run
    names = {kind: path.name for kind, path in result.files.items()}
    assert names == {
        "seg": "seg.dcm",
        "sr": "sr.dcm",
        "report": "report.json",
        "preview": "preview.png",
    }
    assert all(path.stat().st_size > 0 for path in result.files.values())


def test_seg_reads_back_to_the_label_map_exactly(
    petct_run: tuple[AnalysisResult, list], shared_data: Path
) -> None:
    result, _ = petct_run
    volume = load_ct(shared_data / "ts-petct-dicom" / "series").volume
    np.testing.assert_array_equal(read_label_map(result.files["seg"], volume), result.labels)


@pytest.mark.parametrize("kind", ["seg", "sr"])
def test_dicom_outputs_pass_dciodvfy(petct_run: tuple[AnalysisResult, list], kind: str) -> None:
    result, _ = petct_run
    assert dciodvfy_errors(result.files[kind]) == []


def test_report_describes_the_run(petct_run: tuple[AnalysisResult, list]) -> None:
    result, _ = petct_run
    report = Report.model_validate(json.loads(result.files["report"].read_text()))
    assert report.input.format == "dicom"
    assert report.input.chosen_series is not None
    assert report.input.chosen_series.accepted
    assert report.input.shape == (20, 512, 512)
    assert report.input.spacing_mm[0] == pytest.approx(2.0)
    assert report.input.slice_thickness_mm == pytest.approx(3.0)
    assert report.model.kind == "rules"
    assert set(report.timings_s) >= {s.value for s in Stage}
    labels = result.labels
    voxel_cm3 = np.prod(report.input.spacing_mm) / 1000.0
    for row in report.classes:
        expected = np.count_nonzero(labels == row.label) * voxel_cm3
        assert row.volume_cm3 == pytest.approx(expected, abs=1e-3)
    # the empty UIDs of this series were filled from the file meta header, and said so
    assert any("MediaStorageSOPInstanceUID" in w for w in report.warnings)


def test_progress_runs_through_every_stage_in_order(petct_run: tuple[AnalysisResult, list]) -> None:
    _, events = petct_run
    percents = [overall_percent(stage, fraction) for stage, fraction in events]
    assert percents == sorted(percents)
    assert [s for s in Stage] == list(dict.fromkeys(stage for stage, _ in events))
    assert percents[-1] == pytest.approx(100.0)


def test_nifti_input_gives_report_and_preview_but_no_dicom(
    shared_data: Path, tmp_path: Path
) -> None:
    result = analyze(shared_data / "ts-upper-abdomen" / "ct.nii.gz", tmp_path, RULES)
    assert set(result.files) == {"report", "preview"}
    assert result.report.input.format == "nifti"
    assert any("NIfTI" in w for w in result.report.warnings)
    assert result.labels.shape == result.report.input.shape
