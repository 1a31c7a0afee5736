"""load_ct as the pipeline sees it: progress by stage, and the result's shape."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from habitus.dicom import LoadedCT, SeriesRules, load_ct
from habitus.progress import Stage
from tests.dicom.support import small_series


def test_progress_goes_through_read_choose_volume(tmp_path: Path) -> None:
    small_series(tmp_path)
    calls: list[tuple[Stage, float]] = []
    load_ct(tmp_path, progress=lambda stage, fraction: calls.append((stage, fraction)))
    stages = [stage for stage, _ in calls]
    assert stages[0] == Stage.READ and stages[-1] == Stage.VOLUME
    first_of = {s: stages.index(s) for s in (Stage.READ, Stage.CHOOSE, Stage.VOLUME)}
    last_of = {s: len(stages) - 1 - stages[::-1].index(s) for s in first_of}
    assert last_of[Stage.READ] < first_of[Stage.CHOOSE] <= last_of[Stage.CHOOSE]
    assert last_of[Stage.CHOOSE] < first_of[Stage.VOLUME]
    for stage in first_of:
        fractions = [f for s, f in calls if s == stage]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        assert all(0.0 <= f <= 1.0 for f in fractions)
    assert len([1 for s, _ in calls if s == Stage.READ]) >= 20  # one step per file


def test_single_decoding_thread_gives_the_same_volume(tmp_path: Path) -> None:
    _, hu, _ = small_series(tmp_path)
    one = load_ct(tmp_path, decode_workers=1)
    many = load_ct(tmp_path, decode_workers=3)
    np.testing.assert_array_equal(one.volume.hu, hu)
    np.testing.assert_array_equal(many.volume.hu, hu)


def test_nifti_reports_progress_and_format(tmp_path: Path) -> None:
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.full((4, 5, 6), -1000, dtype=np.int16), np.eye(4)), str(path))
    stages: list[Stage] = []
    loaded = load_ct(path, progress=lambda stage, fraction: stages.append(stage))
    assert isinstance(loaded, LoadedCT) and loaded.format == "nifti"
    assert set(stages) == {Stage.READ, Stage.CHOOSE, Stage.VOLUME}


def test_single_slice_takes_its_thickness_as_interval(tmp_path: Path) -> None:
    small_series(tmp_path, shape=(1, 40, 40), slice_thickness=3.0)
    volume = load_ct(tmp_path, SeriesRules(min_slices=1)).volume
    assert volume.shape == (1, 40, 40) and volume.geometry.spacing[0] == 3.0
