from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray
from PIL import Image

from habitus.outputs.preview import Line, PreviewOptions
from habitus.outputs.report import Report
from habitus.outputs.seg import read_label_map
from habitus.outputs.writer import write_outputs
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume

ReportFor = Callable[[CTVolume, NDArray[np.uint8]], Report]


def test_writes_all_four_outputs(
    synthetic_volume: CTVolume,
    synthetic_label_map: NDArray[np.uint8],
    model: ModelInfo,
    report_for: ReportFor,
    tmp_path: Path,
) -> None:
    report = report_for(synthetic_volume, synthetic_label_map)
    paths = write_outputs(
        tmp_path / "out",
        report=report,
        labels=synthetic_label_map,
        volume=synthetic_volume,
        model=model,
        preview=PreviewOptions(marks=[Line(12, "L3")], text_lines=["SMI 40.1 cm2/m2"]),
    )
    assert set(paths) == {"seg", "sr", "report", "preview"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["seg.dcm", "sr.dcm", "report.json", "preview.png"]
    )  # no temporary file left behind

    stored = Report.model_validate_json(paths["report"].read_text())
    assert stored.outputs == {kind: path.name for kind, path in paths.items()}
    assert stored == report
    np.testing.assert_array_equal(
        read_label_map(paths["seg"], synthetic_volume), synthetic_label_map
    )
    seg = pydicom.dcmread(paths["seg"], stop_before_pixels=True)
    sr = pydicom.dcmread(paths["sr"])
    evidence = {
        item.ReferencedSOPInstanceUID
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    assert seg.SOPInstanceUID in evidence
    with Image.open(paths["preview"]) as image:
        assert image.format == "PNG" and image.width > 0


def test_rewriting_gives_identical_files(
    synthetic_volume: CTVolume,
    synthetic_label_map: NDArray[np.uint8],
    model: ModelInfo,
    report_for: ReportFor,
    tmp_path: Path,
) -> None:
    report = report_for(synthetic_volume, synthetic_label_map)
    runs = []
    for name in ("first", "second"):
        runs.append(
            write_outputs(
                tmp_path / name,
                report=report.model_copy(deep=True),
                labels=synthetic_label_map,
                volume=synthetic_volume,
                model=model,
            )
        )
    for kind in ("seg", "sr", "preview"):
        assert runs[0][kind].read_bytes() == runs[1][kind].read_bytes(), kind
    # the report differs only in how long the writing took
    first, second = (json.loads(run["report"].read_text()) for run in runs)
    assert first.pop("timings_s").keys() == second.pop("timings_s").keys() == {"outputs"}
    assert first == second


def test_rewriting_into_the_same_folder_replaces_the_files(
    synthetic_volume: CTVolume,
    synthetic_label_map: NDArray[np.uint8],
    model: ModelInfo,
    report_for: ReportFor,
    tmp_path: Path,
) -> None:
    report = report_for(synthetic_volume, synthetic_label_map)
    first = write_outputs(
        tmp_path, report=report, labels=synthetic_label_map, volume=synthetic_volume, model=model
    )
    before = first["sr"].read_bytes()
    second = write_outputs(
        tmp_path, report=report, labels=synthetic_label_map, volume=synthetic_volume, model=model
    )
    assert second["sr"].read_bytes() == before
    assert len(list(tmp_path.iterdir())) == 4


def test_nifti_input_skips_dicom_objects_with_a_warning(
    nifti_volume: CTVolume,
    synthetic_label_map: NDArray[np.uint8],
    model: ModelInfo,
    report_for: ReportFor,
    tmp_path: Path,
) -> None:
    report = report_for(nifti_volume, synthetic_label_map)
    paths = write_outputs(
        tmp_path, report=report, labels=synthetic_label_map, volume=nifti_volume, model=model
    )
    assert set(paths) == {"preview", "report"}
    stored = Report.model_validate_json(paths["report"].read_text())
    assert set(stored.outputs) == {"preview", "report"}
    assert any("NIfTI" in warning for warning in stored.warnings)
    assert not (tmp_path / "seg.dcm").exists()


def test_all_background_skips_dicom_objects_with_a_warning(
    synthetic_volume: CTVolume, model: ModelInfo, report_for: ReportFor, tmp_path: Path
) -> None:
    empty = np.zeros(synthetic_volume.shape, np.uint8)
    report = report_for(synthetic_volume, empty)
    paths = write_outputs(
        tmp_path, report=report, labels=empty, volume=synthetic_volume, model=model
    )
    assert set(paths) == {"preview", "report"}
    assert any("no tissue" in warning for warning in report.warnings)
