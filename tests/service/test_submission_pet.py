"""submit_study carries the study's attenuation-corrected PET into the CT's job; a PET that PACS
sends after the CT was analysed makes a new version of the CT's job."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from habitus.jobs import JobState, JobStore, Origin, OriginKind
from habitus.phantoms.studies import SyntheticStudy, write_petct_study
from habitus.settings import Settings
from habitus.uids import derived_uid
from service.submission import LateSeriesSkipped, submit_study

PACS = Origin(kind=OriginKind.DICOM, calling_ae_title="PACS", peer_host="127.0.0.1")
REST = Origin(kind=OriginKind.REST, client="tests")


@pytest.fixture
def petct(tmp_path: Path) -> tuple[Path, SyntheticStudy]:
    """A small PET-CT study (16 CT slices, 8 PET slices) with a non-corrected PET besides."""
    folder = tmp_path / "study"
    study = write_petct_study(folder, slices=16, rows=16, pixel_spacing=20.0)
    nac_series = derived_uid("nac", study.study_instance_uid)
    for path in sorted((folder / "s06").iterdir()):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SeriesNumber = nac_series, 7
        ds.SOPInstanceUID = derived_uid("nac", ds.SOPInstanceUID)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.CorrectedImage = ["DECY"]
        (folder / "s07").mkdir(exist_ok=True)
        ds.save_as(folder / "s07" / path.name)
    return folder, study


def input_series(job_input: str) -> dict[str, int]:
    """Instances per series in a job's input folder."""
    counts: dict[str, int] = {}
    for path in Path(job_input).iterdir():
        uid = pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID
        counts[uid] = counts.get(uid, 0) + 1
    return counts


SubmitFromPacs = Callable[[Path], list[str]]


@pytest.fixture
def from_pacs(settings: Settings, store: JobStore) -> SubmitFromPacs:
    """Submits a folder as the PACS node sent it (nothing queued)."""
    return lambda folder: submit_study(
        folder, PACS, settings=settings, store=store, send=lambda _: None
    )


def ct_then(study: Path, later: str, tmp_path: Path) -> tuple[Path, Path]:
    """The study's CT series (s02) and its series ``later``, each in a folder of its own."""
    ct_only, then = tmp_path / "ct-only", tmp_path / later
    shutil.copytree(study / "s02", ct_only)
    shutil.copytree(study / later, then)
    return ct_only, then


def test_an_uploaded_study_carries_its_corrected_pet_into_the_job(
    petct: tuple[Path, SyntheticStudy], settings: Settings, store: JobStore
) -> None:
    folder, study = petct
    [job_id] = submit_study(folder, REST, settings=settings, store=store, send=lambda _: None)
    job = store.get(job_id)
    pet = study.series["PET AC"]
    assert job.series_instance_uid == study.expected_series_uid and job.instances == 16
    assert job.pet_series_instance_uids == [pet]
    # the CT and the corrected PET; never the non-corrected PET nor the other CT series
    assert input_series(job.input_dir) == {study.expected_series_uid: 16, pet: 8}


def test_a_late_pet_from_pacs_makes_a_new_version_with_the_pet(
    petct: tuple[Path, SyntheticStudy], from_pacs: SubmitFromPacs, store: JobStore, tmp_path: Path
) -> None:
    folder, study = petct
    ct_only, late_pet = ct_then(folder, "s06", tmp_path)
    [first] = from_pacs(ct_only)
    assert store.get(first).pet_series_instance_uids == []
    store.transition(first, JobState.RUNNING)
    store.transition(first, JobState.SUCCEEDED)

    [second] = from_pacs(late_pet)
    job = store.get(second)
    pet = study.series["PET AC"]
    assert job.version == 2 and job.supersedes == first and job.destinations == ["pacs"]
    assert job.series_instance_uid == study.expected_series_uid
    assert job.pet_series_instance_uids == [pet]
    assert input_series(job.input_dir) == {study.expected_series_uid: 16, pet: 8}

    # the same PET sent again brings nothing new: no third analysis
    with pytest.raises(LateSeriesSkipped):
        from_pacs(late_pet)


def test_a_late_non_corrected_pet_is_not_analysed_again(
    petct: tuple[Path, SyntheticStudy], from_pacs: SubmitFromPacs, store: JobStore, tmp_path: Path
) -> None:
    folder, _ = petct
    ct_only, nac = ct_then(folder, "s07", tmp_path)
    [first] = from_pacs(ct_only)
    with pytest.raises(LateSeriesSkipped):
        from_pacs(nac)
    latest = store.latest_for_series(store.get(first).series_instance_uid or "")
    assert latest is not None and latest.id == first
