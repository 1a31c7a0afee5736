"""Which PT series is the PET of the CT, and why the others are not; a PET is never the CT."""

from pathlib import Path

import pytest

from habitus.dicom import load_ct
from habitus.errors import NoSuitableSeries
from habitus.phantoms.pet import PetHeader
from tests.pet.study import Study, add_pet, write_ct


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> Study:
    return write_ct(tmp_path_factory.mktemp("find"))


def test_the_ct_chooser_never_takes_the_pet(ct: Study, tmp_path: Path) -> None:
    study = Study(tmp_path, ct.labels, ct.geometry)
    add_pet(study, PetHeader())
    loaded = load_ct([ct.root / "ct", tmp_path / "pet6"])
    assert loaded.chosen is not None and loaded.chosen.modality == "CT"
    (pet,) = loaded.others
    assert pet.reasons == ["modality PT, expected CT"]
    with pytest.raises(NoSuitableSeries, match="modality PT, expected CT"):
        load_ct(tmp_path / "pet6")


def test_the_ct_frame_is_preferred_and_nac_refused(ct: Study, tmp_path: Path) -> None:
    from habitus.dicom.group import group_series
    from habitus.dicom.read import scan_headers
    from habitus.dicom.sources import collect_sources
    from habitus.pet.find import find_pet
    from habitus.uids import derived_uid

    study = Study(tmp_path, ct.labels, ct.geometry)
    add_pet(study, PetHeader(), number=6, frame_uid=derived_uid("another-frame"))
    add_pet(study, PetHeader(), number=7)
    add_pet(study, PetHeader(corrected_image=("DECY",)), number=8, description="PET NAC")
    volume = load_ct(ct.root / "ct").volume
    groups = group_series(scan_headers(collect_sources(tmp_path)).instances).series
    choice = find_pet(groups, volume)
    assert choice.chosen is not None and choice.chosen.series_number == 7
    assert choice.chosen.same_frame_of_reference
    reasons = {v.series_number: v.reasons for v in choice.others}
    assert "the CT's frame of reference preferred" in reasons[6][0]
    assert "lacks ATTN" in reasons[8][0]


def test_a_pet_that_does_not_overlap_the_ct_is_refused(ct: Study, tmp_path: Path) -> None:
    import numpy as np

    from habitus.dicom.group import group_series
    from habitus.dicom.read import scan_headers
    from habitus.dicom.sources import collect_sources
    from habitus.pet.find import find_pet
    from habitus.phantoms.write_dicom import write_series
    from habitus.uids import derived_uid
    from habitus.volume import Geometry
    from tests.pet.study import STUDY_UID

    far = Geometry((4.0, 5.0, 5.0), (-200.0, -200.0, 600.0), ct.geometry.direction)
    values = np.ones((10, 16, 16), dtype=np.float32)
    write_series(
        tmp_path / "pet",
        values,
        far,
        pet=PetHeader(),
        series_number=6,
        series_description="PET AC",
        study_uid=STUDY_UID,
        frame_of_reference_uid=derived_uid("another-frame"),
    )
    volume = load_ct(ct.root / "ct").volume
    choice = find_pet(
        group_series(scan_headers(collect_sources(tmp_path)).instances).series, volume
    )
    assert choice.chosen is None
    (verdict,) = choice.others
    assert verdict.reasons == ["its volume does not overlap the CT's in patient coordinates"]
