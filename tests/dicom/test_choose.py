"""Choosing the CT series of a mixed study; every other series gets its reason."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pydicom
import pytest
from pydicom.uid import SecondaryCaptureImageStorage

from habitus.config import get_settings
from habitus.dicom import KernelClass, SeriesRules, load_ct
from habitus.errors import NoSuitableSeries
from habitus.outputs.report import SeriesInfo
from habitus.phantoms.studies import write_petct_study
from habitus.phantoms.trunk import synthetic_trunk
from habitus.phantoms.write_dicom import axial_geometry, write_series
from tests.dicom.support import chosen_of


@pytest.fixture(scope="module")
def petct_study(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("petct")
    study = write_petct_study(folder, slices=40, rows=32, pixel_spacing=10.0)
    return folder, study


def test_petct_study_chooses_the_thin_soft_tissue_ct(petct_study) -> None:
    folder, study = petct_study
    loaded = load_ct(folder)
    assert chosen_of(loaded).series_instance_uid == study.expected_series_uid
    assert chosen_of(loaded).accepted
    assert "soft-tissue kernel B30f" in " ".join(chosen_of(loaded).reasons)
    hu, _ = synthetic_trunk((40, 32, 32), (2.0, 10.0, 10.0), seed=0, z_start=-400.0)
    np.testing.assert_array_equal(loaded.volume.hu, hu)


def test_petct_study_gives_every_other_series_its_reason(petct_study) -> None:
    folder, study = petct_study
    loaded = load_ct(folder)
    reasons = {v.description: " ".join(v.reasons) for v in loaded.others}
    assert set(reasons) == set(study.series) - {"CT Body 2 B30f"}
    assert all(not v.accepted for v in loaded.others)
    assert (
        "soft-tissue kernel B30f preferred over sharp (bone/lung) kernel B70f"
        in (reasons["CT Lung 2 B70f"])
    )
    assert "thinner slices preferred (2 mm over 5 mm)" in reasons["CT Body 5 B30f"]
    assert "MIP images are not analysed" in reasons["CT MIP"]
    assert "LOCALIZER" in reasons["Topogram"] and "not axial" in reasons["Topogram"]
    assert reasons["PET AC"] == "modality PT, expected CT"
    for verdict in loaded.others:
        SeriesInfo(**asdict(verdict))  # the report schema accepts every verdict


def test_no_suitable_series_lists_each_with_its_reasons(petct_study) -> None:
    folder, _ = petct_study
    only_distractors = [p for p in folder.rglob("*.dcm") if p.parent.name in ("s01", "s05", "s06")]
    with pytest.raises(NoSuitableSeries) as refused:
        load_ct(only_distractors)
    message = str(refused.value)
    assert "found 3 series" in message
    assert "'Topogram'" in message and "'CT MIP'" in message and "'PET AC'" in message
    assert "modality PT, expected CT" in message


def test_rules_default_from_settings() -> None:
    rules = SeriesRules()
    assert rules.min_slices == get_settings().min_slices
    assert rules.max_slice_thickness_mm == get_settings().max_slice_thickness_mm


def test_rules_can_prefer_nothing_but_thin_slices(petct_study) -> None:
    folder, study = petct_study
    # A site that classifies every kernel alike ranks on thickness, then slice count.
    rules = SeriesRules(soft_kernel_patterns=(), sharp_kernel_patterns=())
    loaded = load_ct(folder, rules)
    assert chosen_of(loaded).series_instance_uid == study.expected_series_uid  # series 2
    (lung,) = [v for v in loaded.others if v.series_number == 3]
    assert "equal on kernel, thickness and slices; the lower series number" in lung.reasons[0]


@pytest.mark.parametrize(
    ("kernel", "expected"),
    [
        ("B30f", KernelClass.SOFT),
        ("B31s", KernelClass.SOFT),
        ("Br38f\\3", KernelClass.SOFT),
        ("I30f\\3", KernelClass.SOFT),
        ("STANDARD", KernelClass.SOFT),
        ("SOFT", KernelClass.SOFT),
        ("B", KernelClass.SOFT),
        ("FC08", KernelClass.SOFT),
        ("B70f", KernelClass.SHARP),
        ("Br64", KernelClass.SHARP),
        ("Bl57d", KernelClass.SHARP),
        ("LUNG", KernelClass.SHARP),
        ("BONEPLUS", KernelClass.SHARP),
        ("L", KernelClass.SHARP),
        ("FC52", KernelClass.SHARP),
        ("", KernelClass.UNKNOWN),
        ("Hr40", KernelClass.UNKNOWN),
    ],
)
def test_kernel_classes(kernel: str, expected: KernelClass) -> None:
    assert SeriesRules().kernel_class(kernel) == expected


DERIVED_AXIAL = ("DERIVED", "SECONDARY", "AXIAL")


def _trunk_series(folder, image_type, series_number, study_uid, description):
    shape, spacing = (20, 32, 32), (3.0, 10.0, 10.0)
    hu, _ = synthetic_trunk(shape, spacing, seed=1, z_start=-300.0)
    geometry = axial_geometry(shape, spacing, z_start=-300.0)
    return write_series(
        folder / f"s{series_number:02d}",
        hu,
        geometry,
        series_number=series_number,
        series_description=description,
        image_type=image_type,
        study_uid=study_uid,
    )


def test_derived_axial_series_is_analysed_with_a_warning_when_it_is_the_only_ct(
    tmp_path,
) -> None:
    _trunk_series(tmp_path, DERIVED_AXIAL, 7, "1.2.826.0.1.3680043.8.498.71", "Axial 3mm")
    loaded = load_ct(tmp_path)
    assert chosen_of(loaded).accepted
    assert chosen_of(loaded).description == "Axial 3mm"
    (warning,) = [w for w in loaded.warnings if "no ORIGINAL axial CT series" in w]
    assert "DERIVED\\SECONDARY\\AXIAL" in warning


def test_original_series_wins_over_a_derived_one(tmp_path) -> None:
    study = "1.2.826.0.1.3680043.8.498.72"
    # The derived series is thinner and would win on rank alone; ORIGINAL comes first.
    shape, spacing = (30, 32, 32), (2.0, 10.0, 10.0)
    hu, _ = synthetic_trunk(shape, spacing, seed=1, z_start=-300.0)
    geometry = axial_geometry(shape, spacing, z_start=-300.0)
    write_series(
        tmp_path / "derived", hu, geometry, series_number=8, series_description="Thin MPR",
        image_type=("DERIVED", "PRIMARY", "AXIAL", "MPR"), study_uid=study,
    )  # fmt: skip
    _trunk_series(tmp_path, ("ORIGINAL", "PRIMARY", "AXIAL"), 2, study, "Body 3mm")
    loaded = load_ct(tmp_path)
    assert chosen_of(loaded).description == "Body 3mm"
    (derived,) = loaded.others
    assert "DERIVED reconstruction" in derived.reasons[0]
    assert "is ORIGINAL" in derived.reasons[0]
    assert not any("no ORIGINAL axial CT series" in w for w in loaded.warnings)


def test_derived_fallback_can_be_switched_off(tmp_path) -> None:
    _trunk_series(tmp_path, DERIVED_AXIAL, 7, "1.2.826.0.1.3680043.8.498.73", "Axial 3mm")
    with pytest.raises(NoSuitableSeries, match="DERIVED reconstructions are not analysed"):
        load_ct(tmp_path, SeriesRules(derived_fallback=False))


def test_secondary_capture_is_refused_even_when_labelled_ct(tmp_path) -> None:
    paths = _trunk_series(tmp_path, DERIVED_AXIAL, 9, "1.2.826.0.1.3680043.8.498.74", "Screenshots")
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        ds.save_as(path)
    with pytest.raises(NoSuitableSeries, match="Secondary Capture images"):
        load_ct(tmp_path)
