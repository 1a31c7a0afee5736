from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray

from habitus.errors import OutputError
from habitus.labels import TISSUE_CLASSES, Tissue
from habitus.outputs.seg import (
    build_segmentation,
    read_label_map,
    source_headers,
    source_identity,
)
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume, SourceSeries
from tests.outputs.conftest import dciodvfy_errors


def _encoded(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _round_trip(labels: NDArray[np.uint8], volume: CTVolume, model: ModelInfo, tmp: Path) -> None:
    path = tmp / "seg.dcm"
    build_segmentation(labels, volume, model).save_as(path, enforce_file_format=True)
    back = read_label_map(path, volume)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, labels)


def test_round_trip_is_exact_on_synthetic_series(
    synthetic_volume: CTVolume,
    synthetic_label_map: NDArray[np.uint8],
    model: ModelInfo,
    tmp_path: Path,
) -> None:
    _round_trip(synthetic_label_map, synthetic_volume, model, tmp_path)


def test_round_trip_is_exact_on_real_three_slices(
    three_slice_volume: CTVolume,
    three_slice_labels: NDArray[np.uint8],
    model: ModelInfo,
    tmp_path: Path,
) -> None:
    _round_trip(three_slice_labels, three_slice_volume, model, tmp_path)


def test_round_trip_is_exact_on_jpeg2000_petct(
    petct_volume: CTVolume, petct_labels: NDArray[np.uint8], model: ModelInfo, tmp_path: Path
) -> None:
    _round_trip(petct_labels, petct_volume, model, tmp_path)


def test_round_trip_from_dataset_in_memory(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    seg = build_segmentation(synthetic_label_map, synthetic_volume, model)
    dataset = pydicom.dcmread(io.BytesIO(_encoded(seg)))
    np.testing.assert_array_equal(read_label_map(dataset, synthetic_volume), synthetic_label_map)


def test_frames_lie_on_their_source_slices(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    seg = build_segmentation(synthetic_label_map, synthetic_volume, model)
    headers = {h.SOPInstanceUID: h for h in source_headers(synthetic_volume)}
    for frame in seg.PerFrameFunctionalGroupsSequence:
        source_uid = frame.DerivationImageSequence[0].SourceImageSequence[0]
        header = headers[source_uid.ReferencedSOPInstanceUID]
        position = frame.PlanePositionSequence[0].ImagePositionPatient
        np.testing.assert_allclose(
            [float(v) for v in position],
            [float(v) for v in header.ImagePositionPatient],
            rtol=0,
            atol=1e-6,
        )
    orientation = seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
    first = next(iter(headers.values()))
    assert [float(v) for v in orientation.ImageOrientationPatient] == [
        float(v) for v in first.ImageOrientationPatient
    ]


def test_all_classes_described_and_only_nonempty_frames_kept(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    seg = build_segmentation(synthetic_label_map, synthetic_volume, model)
    numbers = [int(s.SegmentNumber) for s in seg.SegmentSequence]
    assert numbers == [int(t) for t in TISSUE_CLASSES]
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [t.display_name for t in TISSUE_CLASSES]
    expected_frames = sum(
        int(np.any(synthetic_label_map[k] == tissue))
        for k in range(synthetic_label_map.shape[0])
        for tissue in TISSUE_CLASSES
    )
    assert seg.NumberOfFrames == expected_frames
    assert seg.SegmentationType == "BINARY"


def test_absent_class_is_a_segment_without_frames(
    three_slice_volume: CTVolume, three_slice_labels: NDArray[np.uint8], model: ModelInfo
) -> None:
    assert not np.any(three_slice_labels == Tissue.CNS)
    seg = build_segmentation(three_slice_labels, three_slice_volume, model)
    referenced = {
        int(frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        for frame in seg.PerFrameFunctionalGroupsSequence
    }
    assert Tissue.CNS not in referenced
    assert int(Tissue.CNS) in {int(s.SegmentNumber) for s in seg.SegmentSequence}


def test_uids_and_bytes_are_deterministic(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    from datetime import datetime

    when = datetime(2024, 1, 2, 3, 4, 5)
    first = build_segmentation(synthetic_label_map, synthetic_volume, model, created=when)
    second = build_segmentation(synthetic_label_map, synthetic_volume, model, created=when)
    assert first.SOPInstanceUID == second.SOPInstanceUID
    assert first.SeriesInstanceUID == second.SeriesInstanceUID
    assert _encoded(first) == _encoded(second)
    other_model = build_segmentation(
        synthetic_label_map, synthetic_volume, replace(model, version="9.9.9"), created=when
    )
    assert other_model.SOPInstanceUID != first.SOPInstanceUID
    assert other_model.SeriesInstanceUID != first.SeriesInstanceUID


def test_algorithm_and_study_identification(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    seg = build_segmentation(synthetic_label_map, synthetic_volume, model)
    assert synthetic_volume.source is not None
    assert seg.StudyInstanceUID == synthetic_volume.source.study_instance_uid
    assert seg.FrameOfReferenceUID == synthetic_volume.source.frame_of_reference_uid
    segment = seg.SegmentSequence[Tissue.MUSCLE - 1]
    algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
    assert segment.SegmentAlgorithmType == "AUTOMATIC"
    assert segment.SegmentAlgorithmName == model.model_id
    assert algorithm.AlgorithmVersion == model.version
    assert algorithm.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Artificial Intelligence"
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodeValue == "127954009"
    assert len(segment.RecommendedDisplayCIELabValue) == 3


def test_empty_source_uids_are_filled_without_touching_the_source(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    assert synthetic_volume.source is not None
    blanked = []
    for header in synthetic_volume.source.headers:
        copy = pydicom.Dataset()
        copy.update(header)
        copy.file_meta = header.file_meta
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            copy.add_new(keyword, "UI", "")
        blanked.append(copy)
    volume = replace(synthetic_volume, source=replace(synthetic_volume.source, headers=blanked))
    seg = build_segmentation(synthetic_label_map, volume, model)
    assert seg.StudyInstanceUID == synthetic_volume.source.study_instance_uid
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == synthetic_volume.source.series_instance_uid
    assert [i.ReferencedSOPInstanceUID for i in referenced.ReferencedInstanceSequence] == [
        h.SOPInstanceUID for h in synthetic_volume.source.headers
    ]
    assert all(h.SOPInstanceUID == "" for h in blanked)


def test_nifti_volume_is_refused(
    nifti_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    with pytest.raises(OutputError, match="NIfTI"):
        build_segmentation(synthetic_label_map, nifti_volume, model)


def test_label_map_must_fit_the_volume(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    with pytest.raises(OutputError, match="shape"):
        build_segmentation(synthetic_label_map[1:], synthetic_volume, model)
    wrong_values = synthetic_label_map.copy()
    wrong_values[5, 5, 5] = 9
    with pytest.raises(OutputError, match="label values 0 to 7"):
        build_segmentation(wrong_values, synthetic_volume, model)
    with pytest.raises(OutputError, match="no foreground"):
        build_segmentation(np.zeros_like(synthetic_label_map), synthetic_volume, model)


def test_missing_source_slices_are_refused(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    assert synthetic_volume.source is not None
    short: SourceSeries = replace(
        synthetic_volume.source, headers=synthetic_volume.source.headers[:-1]
    )
    with pytest.raises(OutputError, match="one source slice per volume slice"):
        build_segmentation(synthetic_label_map, replace(synthetic_volume, source=short), model)


def test_seg_of_another_series_is_refused(
    synthetic_volume: CTVolume,
    synthetic_label_map: NDArray[np.uint8],
    three_slice_volume: CTVolume,
    model: ModelInfo,
) -> None:
    seg = build_segmentation(synthetic_label_map, synthetic_volume, model)
    with pytest.raises(OutputError, match="expected a SEG of series"):
        read_label_map(seg, three_slice_volume)


@pytest.mark.parametrize("case", ["synthetic", "petct"])
def test_dciodvfy_finds_no_error(
    case: str, request: pytest.FixtureRequest, model: ModelInfo, tmp_path: Path
) -> None:
    volume: CTVolume = request.getfixturevalue(f"{case}_volume")
    labels = request.getfixturevalue(
        "synthetic_label_map" if case == "synthetic" else "petct_labels"
    )
    path = tmp_path / "seg.dcm"
    build_segmentation(labels, volume, model).save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []


def test_inconsistent_source_headers_raise_output_error(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    assert synthetic_volume.source is not None
    headers = list(synthetic_volume.source.headers)
    odd = pydicom.Dataset()
    odd.update(headers[5])
    odd.file_meta = headers[5].file_meta
    odd.add_new("ImageOrientationPatient", "DS", [0, 1, 0, 0, 0, -1])
    headers[5] = odd
    volume = replace(synthetic_volume, source=replace(synthetic_volume.source, headers=headers))
    with pytest.raises(OutputError, match="could not be built"):
        build_segmentation(synthetic_label_map, volume, model)


def test_reading_a_file_that_is_no_seg_raises_output_error(
    synthetic_volume: CTVolume, tmp_path: Path
) -> None:
    path = tmp_path / "not-a-seg.dcm"
    path.write_bytes(b"not DICOM at all")
    with pytest.raises(OutputError, match="expected a DICOM-SEG file"):
        read_label_map(path, synthetic_volume)


def test_a_changed_set_of_source_slices_gives_new_uids(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    assert synthetic_volume.source is not None
    fewer = replace(
        synthetic_volume,
        hu=synthetic_volume.hu[1:],
        source=replace(synthetic_volume.source, headers=synthetic_volume.source.headers[1:]),
    )
    first = build_segmentation(synthetic_label_map, synthetic_volume, model)
    again = build_segmentation(synthetic_label_map, synthetic_volume, model)
    changed = build_segmentation(synthetic_label_map[1:], fewer, model)
    assert first.SOPInstanceUID == again.SOPInstanceUID
    assert changed.SOPInstanceUID != first.SOPInstanceUID
    assert source_identity(fewer) != source_identity(synthetic_volume)
