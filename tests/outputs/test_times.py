"""Dates and times of the SEG and SR: in the source's stated UTC offset, else in local time.

DICOM reads a date or time without Timezone Offset From UTC as local time, and an offset,
where given, holds for every date and time of the object (the study's, copied from the
source, too).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
from numpy.typing import NDArray

from habitus.outputs.seg import build_segmentation
from habitus.outputs.sr import build_sr
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume
from tests.outputs.conftest import make_report, synthetic_datasets, volume_from_datasets

ANALYSED_AT = datetime(2026, 11, 28, 11, 42, 0, tzinfo=UTC)


@pytest.fixture
def seoul_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The service runs with TZ=Asia/Seoul (UTC+9, no daylight saving)."""
    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def times(dataset: object) -> dict[str, str | None]:
    keywords = ("ContentDate", "ContentTime", "InstanceCreationTime", "TimezoneOffsetFromUTC")
    found = {k: getattr(dataset, k, None) for k in keywords}
    return {k: None if v is None else str(v) for k, v in found.items()}


def volume_with_offset(offset: str) -> CTVolume:
    """The synthetic series with Timezone Offset From UTC set to ``offset`` in every slice."""
    datasets = synthetic_datasets()
    for ds in datasets:
        ds.TimezoneOffsetFromUTC = offset
    return volume_from_datasets(datasets)


def build_both(
    volume: CTVolume, labels: NDArray[np.uint8], model: ModelInfo
) -> tuple[object, object]:
    seg = build_segmentation(labels, volume, model, created=ANALYSED_AT)
    sr = build_sr(make_report(volume, labels, model), seg, volume, model, created=ANALYSED_AT)
    return seg, sr


def test_without_a_stated_offset_times_are_local(
    seoul_time: None,
    synthetic_volume: CTVolume,
    synthetic_label_map: NDArray[np.uint8],
    model: ModelInfo,
) -> None:
    for dataset in build_both(synthetic_volume, synthetic_label_map, model):
        found = times(dataset)
        assert found["ContentDate"] == "20261128"
        assert str(found["ContentTime"]).startswith("204200")  # 11:42 UTC is 20:42 in Seoul
        assert str(found["InstanceCreationTime"]).startswith("204200")
        assert found["TimezoneOffsetFromUTC"] is None
    seg, _ = build_both(synthetic_volume, synthetic_label_map, model)
    assert str(getattr(seg, "SeriesTime", "")).startswith("204200")


def test_the_sources_stated_offset_is_kept(
    seoul_time: None, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    volume = volume_with_offset("-0500")
    for dataset in build_both(volume, synthetic_label_map, model):
        found = times(dataset)
        assert str(found["ContentTime"]).startswith("064200")  # 11:42 UTC is 06:42 at -05:00
        assert found["ContentDate"] == "20261128"
        assert found["TimezoneOffsetFromUTC"] == "-0500"


def test_a_malformed_offset_is_not_copied(
    seoul_time: None, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    seg, _ = build_both(volume_with_offset("9"), synthetic_label_map, model)
    assert times(seg)["TimezoneOffsetFromUTC"] is None
    assert str(times(seg)["ContentTime"]).startswith("204200")
