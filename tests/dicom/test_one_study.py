"""Input holding the CT of more than one study is refused, naming the studies."""

from __future__ import annotations

from pathlib import Path

import pytest

from habitus.dicom.load import load_ct
from habitus.errors import InputRefused
from tests.service.support import write_ct_series


def test_two_studies_are_refused_with_both_named(tmp_path: Path) -> None:
    write_ct_series(tmp_path / "a", slices=20, size=32)
    write_ct_series(tmp_path / "b", slices=20, size=32)  # another study
    with pytest.raises(InputRefused, match="found 2 studies") as refused:
        load_ct(tmp_path)
    assert "analyse one study at a time" in str(refused.value)
    assert str(refused.value).count("1 CT series") == 2


def test_series_of_one_study_are_still_chosen_between(tmp_path: Path) -> None:
    import pydicom

    files = write_ct_series(tmp_path / "ct", slices=20, size=32)
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    write_ct_series(tmp_path / "scout", slices=3, size=32, study_uid=study_uid, series_number=2)
    loaded = load_ct(tmp_path)
    assert loaded.chosen is not None and loaded.chosen.instances == 20
