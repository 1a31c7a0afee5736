"""The SUV calculation against hand computations, and each refusal by its name."""

from dataclasses import replace
from datetime import datetime

import pytest
from pydicom.dataset import Dataset

from habitus.pet.suv import (
    PetRefused,
    SuvInputs,
    decayed_dose,
    lean_body_mass_kg,
    parse_date_time,
    parse_date_time_value,
    suv_inputs,
    suv_scale,
)
from habitus.phantoms.pet import PetHeader
from habitus.phantoms.write_dicom import series_attributes

SCAN = datetime(2024, 1, 1, 11, 0, 0)
INJECTION = datetime(2024, 1, 1, 10, 0, 0)

# A worked example: 370 MBq of F-18 (half-life 109.77 min = 6586.2 s) injected at 10:00,
# acquisition from 11:00, 70 kg, a voxel of 5000 Bq/ml. By hand:
#   3600 / 6586.2 = 0.54660; 2^-0.54660 = 0.68463; decayed dose = 370 MBq x 0.68463 = 253.31 MBq
#   SUVbw = 5000 Bq/ml x 70 000 g / 253.31e6 Bq = 1.3817 g/ml
#   BMI = 70 / 1.75^2 = 22.857; LBM (man) = 9270 x 70 / (6680 + 216 x 22.857) = 55.857 kg
#   SUL = 1.3817 x 55.857 / 70 = 1.1025
EXAMPLE = SuvInputs(
    units="BQML",
    corrected_image=("ATTN", "DECY"),
    decay_correction="START",
    series_time=SCAN,
    first_acquisition_time=SCAN,
    injection_time=INJECTION,
    injection_time_source="RadiopharmaceuticalStartDateTime",
    total_dose_bq=370.0e6,
    half_life_s=6586.2,
    radionuclide="^18^Fluorine",
    weight_kg=70.0,
    weight_source="PET header PatientWeight",
)


def test_worked_example_start() -> None:
    scale = suv_scale(EXAMPLE, slices=3)
    assert scale.decay_time_s == 3600.0
    assert scale.decayed_dose_bq == pytest.approx(253.31e6, rel=1e-4)
    assert 5000.0 * scale.per_slice[0] == pytest.approx(1.3817, abs=1e-4)
    assert len(scale.per_slice) == 3


def test_worked_example_sul() -> None:
    lbm = lean_body_mass_kg(70.0, 175.0, "M")
    assert lbm == pytest.approx(55.857, abs=1e-3)
    suv = 5000.0 * suv_scale(EXAMPLE, 1).per_slice[0]
    assert suv * lbm / 70.0 == pytest.approx(1.1025, abs=1e-4)


def test_janmahasatian_woman() -> None:
    # 60 kg, 165 cm: BMI 22.039; 9270 x 60 / (8780 + 244 x 22.039) = 39.287 kg
    assert lean_body_mass_kg(60.0, 165.0, "F") == pytest.approx(39.287, abs=1e-3)


def test_admin_decay_correction_uses_the_injected_dose() -> None:
    # images corrected to injection: SUV = 5000 x 70 000 / 370e6 = 0.94595
    scale = suv_scale(replace(EXAMPLE, decay_correction="ADMIN"), 1)
    assert 5000.0 * scale.per_slice[0] == pytest.approx(0.94595, abs=1e-5)


def test_one_half_life_halves_the_dose() -> None:
    assert decayed_dose(400.0e6, 6586.2, 6586.2) == pytest.approx(200.0e6)


def test_post_processed_series_uses_the_acquisition_start() -> None:
    # Series dated 12:00 (a reprocessing), acquired from 11:00: the decay runs to 11:00.
    late = replace(EXAMPLE, series_time=datetime(2024, 1, 1, 12, 0, 0))
    assert suv_scale(late, 1).decay_time_s == 3600.0


def test_philips_counts_use_the_vendor_factor_per_slice() -> None:
    counts = replace(EXAMPLE, units="CNTS", philips_suv_factors=(0.001, 0.002))
    assert suv_scale(counts, 2).per_slice == (0.001, 0.002)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"total_dose_bq": None}, "dose_missing"),
        ({"total_dose_bq": 370.0}, "dose_implausible"),  # MBq written where Bq belong
        ({"injection_time": datetime(2024, 1, 1, 11, 30)}, "injection_after_acquisition"),
        ({"injection_time": None}, "injection_time_missing"),
        ({"half_life_s": None}, "half_life_missing"),
        ({"half_life_s": float("nan")}, "half_life_missing"),
        ({"total_dose_bq": float("nan")}, "dose_implausible"),
        ({"units": "GML"}, "units_unsupported"),
        ({"units": ""}, "units_unsupported"),
        ({"units": "CNTS"}, "scale_factor_missing"),
        ({"units": "CNTS", "philips_suv_factors": (float("inf"),)}, "scale_factor_missing"),
        ({"corrected_image": ("DECY",)}, "not_attenuation_corrected"),
        ({"corrected_image": ("ATTN",)}, "not_decay_corrected"),
        ({"decay_correction": "NONE"}, "decay_correction_unsupported"),
        ({"weight_kg": None}, "weight_missing"),
        ({"weight_kg": 0.0}, "weight_missing"),
    ],
)
def test_faulty_headers_are_refused_by_name(change: dict[str, object], code: str) -> None:
    with pytest.raises(PetRefused) as refused:
        suv_scale(replace(EXAMPLE, **change), 1)  # type: ignore[arg-type]
    assert refused.value.code == code
    assert str(refused.value)


def pet_dataset(header: PetHeader) -> Dataset:
    """What every image of a synthetic PET series written with ``header`` carries."""
    return series_attributes(
        study_uid="1.2.3", series_uid="1.2.3.4", frame_of_reference_uid="1.2.3.5", pet=header
    )


def test_inputs_read_from_a_pet_header() -> None:
    header = PetHeader(weight_kg=70.0, uptake_s=3600.0)
    ds = pet_dataset(header)
    inputs = suv_inputs([ds])
    assert inputs.units == "BQML"
    assert inputs.decay_correction == "START"
    assert inputs.total_dose_bq == 370.0e6
    assert inputs.weight_kg == 70.0
    assert inputs.weight_source == "PET header PatientWeight"
    assert inputs.radionuclide == "^18^Fluorine"
    assert suv_scale(inputs, 1).decay_time_s == 3600.0


def test_start_time_without_date_takes_the_series_date() -> None:
    ds = pet_dataset(PetHeader(injection_as_datetime=False))
    inputs = suv_inputs([ds])
    assert inputs.injection_time_source == "SeriesDate with RadiopharmaceuticalStartTime"
    assert inputs.injection_time == datetime(2024, 1, 1, 11, 0, 0)


def test_caller_weight_overrides_the_header() -> None:
    ds = pet_dataset(PetHeader(weight_kg=70.0))
    inputs = suv_inputs([ds], weight_kg=80.0)
    assert (inputs.weight_kg, inputs.weight_source) == (80.0, "caller")


def test_date_and_time_parsing() -> None:
    assert parse_date_time("20240101", "103015.5") == datetime(2024, 1, 1, 10, 30, 15, 500000)
    assert parse_date_time("20240101", "1030") == datetime(2024, 1, 1, 10, 30)
    assert parse_date_time("20240101", "10:30:15") == datetime(2024, 1, 1, 10, 30, 15)
    assert parse_date_time("", "1030") is None
    assert parse_date_time("20240101", "xx") is None
    assert parse_date_time_value("20240101103000+0100") == datetime(2024, 1, 1, 10, 30)
    assert parse_date_time_value("2024") is None
