from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.sr.codedict import codes

from habitus.errors import OutputError
from habitus.labels import Tissue
from habitus.outputs.codes import SQUARE_CENTIMETER, habitus_concept
from habitus.outputs.report import Report
from habitus.outputs.seg import build_segmentation
from habitus.outputs.sr import build_sr, measurement, qualitative_evaluation, scan_measurement_group
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume
from tests.outputs.conftest import content_items, dciodvfy_errors

ReportFor = Callable[[CTVolume, NDArray[np.uint8]], Report]


def _encoded(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture
def synthetic_outputs(
    synthetic_volume: CTVolume,
    synthetic_label_map: NDArray[np.uint8],
    model: ModelInfo,
    report_for: ReportFor,
) -> tuple[Report, hd.seg.Segmentation]:
    report = report_for(synthetic_volume, synthetic_label_map)
    seg = build_segmentation(synthetic_label_map, synthetic_volume, model, created=report.created)
    return report, seg


def test_groups_reference_the_seg_segments(
    synthetic_outputs: tuple[Report, hd.seg.Segmentation],
    synthetic_volume: CTVolume,
    model: ModelInfo,
) -> None:
    report, seg = synthetic_outputs
    sr = build_sr(report, seg, synthetic_volume, model)
    groups = content_items(sr, "Measurement Group")
    present = [row for row in report.classes if row.voxels > 0]
    assert len(groups) == len(present) == 7
    assert synthetic_volume.source is not None
    for group, row in zip(groups, present, strict=True):
        [segment] = content_items(group, "Referenced Segment")
        reference = segment.ReferencedSOPSequence[0]
        assert reference.ReferencedSOPInstanceUID == seg.SOPInstanceUID
        assert reference.ReferencedSOPClassUID == seg.SOPClassUID
        assert int(reference.ReferencedSegmentNumber) == row.label
        [series] = content_items(group, "Source Series for Segmentation")
        assert series.get("UID") == synthetic_volume.source.series_instance_uid
        [volume_item] = content_items(group, "Volume")
        value = volume_item.MeasuredValueSequence[0]
        assert float(value.NumericValue) == pytest.approx(row.volume_cm3)
        assert value.MeasurementUnitsCodeSequence[0].CodeValue == "cm3"
        [mean_item] = content_items(group, "Attenuation Coefficient")
        assert float(mean_item.MeasuredValueSequence[0].NumericValue) == pytest.approx(row.mean_hu)
        [tracking] = content_items(group, "Tracking Identifier")
        assert tracking.TextValue == row.name


def test_absent_classes_get_no_group(
    three_slice_volume: CTVolume,
    three_slice_labels: NDArray[np.uint8],
    model: ModelInfo,
    report_for: ReportFor,
) -> None:
    report = report_for(three_slice_volume, three_slice_labels)
    seg = build_segmentation(three_slice_labels, three_slice_volume, model)
    sr = build_sr(report, seg, three_slice_volume, model)
    numbers = {
        int(item.ReferencedSOPSequence[0].ReferencedSegmentNumber)
        for item in content_items(sr, "Referenced Segment")
    }
    assert numbers == {int(t) for t in np.unique(three_slice_labels) if t > 0}
    assert Tissue.CNS not in numbers


def test_evidence_is_the_seg_and_the_source_series(
    synthetic_outputs: tuple[Report, hd.seg.Segmentation],
    synthetic_volume: CTVolume,
    model: ModelInfo,
) -> None:
    report, seg = synthetic_outputs
    sr = build_sr(report, seg, synthetic_volume, model)
    assert synthetic_volume.source is not None
    referenced = {
        instance.ReferencedSOPInstanceUID
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for instance in series.ReferencedSOPSequence
    }
    source_uids = {h.SOPInstanceUID for h in synthetic_volume.source.headers}
    assert referenced == source_uids | {seg.SOPInstanceUID}
    assert sr.StudyInstanceUID == synthetic_volume.source.study_instance_uid


def test_observer_is_the_device_and_model(
    synthetic_outputs: tuple[Report, hd.seg.Segmentation],
    synthetic_volume: CTVolume,
    model: ModelInfo,
) -> None:
    report, seg = synthetic_outputs
    sr = build_sr(report, seg, synthetic_volume, model)
    [observer_type] = content_items(sr, "Observer Type")
    assert observer_type.ConceptCodeSequence[0].CodeMeaning == "Device"
    [model_name] = content_items(sr, "Device Observer Model Name")
    assert model.model_id in model_name.TextValue and model.version in model_name.TextValue
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"


def test_uids_and_bytes_are_deterministic(
    synthetic_outputs: tuple[Report, hd.seg.Segmentation],
    synthetic_volume: CTVolume,
    model: ModelInfo,
) -> None:
    report, seg = synthetic_outputs
    first = build_sr(report, seg, synthetic_volume, model)
    second = build_sr(report, seg, synthetic_volume, model)
    assert first.SOPInstanceUID == second.SOPInstanceUID
    assert first.SeriesInstanceUID == second.SeriesInstanceUID != seg.SeriesInstanceUID
    assert _encoded(first) == _encoded(second)


def test_a_different_content_gets_a_different_sr_uid_and_the_seg_keeps_its_own(
    synthetic_outputs: tuple[Report, hd.seg.Segmentation],
    synthetic_volume: CTVolume,
    model: ModelInfo,
) -> None:
    report, seg = synthetic_outputs
    first = build_sr(report, seg, synthetic_volume, model)
    changed = report.model_copy(deep=True)
    changed.classes[0].volume_cm3 += 1.0  # e.g. another option or patient input
    second = build_sr(changed, seg, synthetic_volume, model)
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert first.SeriesInstanceUID == second.SeriesInstanceUID  # versions of one series
    assert build_sr(changed, seg, synthetic_volume, model).SOPInstanceUID == second.SOPInstanceUID


def test_extra_groups_are_added_with_their_coding_scheme(
    synthetic_outputs: tuple[Report, hd.seg.Segmentation],
    synthetic_volume: CTVolume,
    model: ModelInfo,
    tmp_path: Path,
) -> None:
    report, seg = synthetic_outputs
    plain = build_sr(report, seg, synthetic_volume, model)
    assert "CodingSchemeIdentificationSequence" not in plain
    waist = scan_measurement_group(
        "Waist",
        synthetic_volume,
        model,
        measurements=[
            measurement(
                habitus_concept("SMA-WAIST", "Average skeletal muscle area in waist"),
                151.3,
                SQUARE_CENTIMETER,
            )
        ],
        evaluations=[
            qualitative_evaluation(
                habitus_concept("LOW-SMI", "Low skeletal muscle index"), codes.SCT.No
            )
        ],
    )
    sr = build_sr(report, seg, synthetic_volume, model, extra_groups=[waist])
    assert len(content_items(sr, "Measurement Group")) == 8
    [area] = content_items(sr, "Average skeletal muscle area in waist")
    assert float(area.MeasuredValueSequence[0].NumericValue) == pytest.approx(151.3)
    schemes = [item.CodingSchemeDesignator for item in sr.CodingSchemeIdentificationSequence]
    assert schemes == ["99HABITUS"]
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []


def test_measurement_refuses_non_finite_values() -> None:
    with pytest.raises(OutputError, match="finite"):
        measurement(habitus_concept("X", "X"), float("nan"), SQUARE_CENTIMETER)


def test_sr_for_another_series_is_refused(
    synthetic_outputs: tuple[Report, hd.seg.Segmentation],
    three_slice_volume: CTVolume,
    model: ModelInfo,
) -> None:
    report, seg = synthetic_outputs
    with pytest.raises(OutputError, match="expected the SEG of series"):
        build_sr(report, seg, three_slice_volume, model)


@pytest.mark.parametrize("case", ["synthetic", "petct"])
def test_dciodvfy_finds_no_error(
    case: str,
    request: pytest.FixtureRequest,
    model: ModelInfo,
    report_for: ReportFor,
    tmp_path: Path,
) -> None:
    volume: CTVolume = request.getfixturevalue(f"{case}_volume")
    labels = request.getfixturevalue(
        "synthetic_label_map" if case == "synthetic" else "petct_labels"
    )
    report = report_for(volume, labels)
    seg = build_segmentation(labels, volume, model)
    path = tmp_path / "sr.dcm"
    build_sr(report, seg, volume, model).save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []


def test_empty_scan_group_is_refused(synthetic_volume: CTVolume, model: ModelInfo) -> None:
    with pytest.raises(OutputError, match="neither measurements nor evaluations"):
        scan_measurement_group("Waist", synthetic_volume, model)
