"""Indices by height and weight, and the paper's cut-offs for men and women."""

from __future__ import annotations

import pytest

from habitus.metrics.indices import (
    HIGH_BFI_CM2_KG,
    LOW_SMI_CM2_M2,
    high_bfi_flag,
    low_smi_flag,
    per_height_squared,
    per_weight,
)
from habitus.outputs.report import PatientInfo


def test_index_by_height_squared_and_by_weight() -> None:
    patient = PatientInfo(height_cm=160.0, weight_kg=80.0, sex="F")
    value, reason = per_height_squared(128.0, patient, None)
    assert value == pytest.approx(128.0 / 1.6**2) and reason is None
    value, reason = per_weight(400.0, patient, None)
    assert value == pytest.approx(5.0) and reason is None


def test_missing_height_or_weight_gives_null_with_the_reason() -> None:
    unknown = PatientInfo()
    value, reason = per_height_squared(128.0, unknown, None)
    assert value is None and "height" in str(reason)
    value, reason = per_weight(400.0, unknown, None)
    assert value is None and "weight" in str(reason)


def test_missing_height_or_weight_gives_the_patients_reason() -> None:
    why = "height unknown: PatientSize 175 (m) read as 17500 cm is outside the plausible range"
    patient = PatientInfo(weight_kg=70.0, missing={"height_cm": why})
    assert per_height_squared(128.0, patient, None) == (None, why)
    assert per_weight(400.0, patient, None)[1] is None


def test_missing_value_keeps_its_own_reason() -> None:
    patient = PatientInfo(height_cm=170.0, weight_kg=70.0)
    value, reason = per_height_squared(None, patient, "waist not covered")
    assert value is None and reason == "waist not covered"


@pytest.mark.parametrize(
    ("sex", "smi", "low"),
    [
        ("M", 39.9, True),
        ("M", 40.0, False),
        ("M", 45.0, False),
        ("F", 34.9, True),
        ("F", 35.0, False),
        ("F", 39.0, False),
    ],
)
def test_low_smi_cut_offs_by_sex(sex: str, smi: float, low: bool) -> None:
    flag = low_smi_flag(smi, sex, None)  # type: ignore[arg-type]
    assert flag.value is low
    assert flag.cutoff == {"M": 40.0, "F": 35.0}[sex]
    assert flag.cutoffs == LOW_SMI_CM2_M2 and flag.comparison == "<"
    assert flag.unit == "cm2/m2" and flag.source.startswith("Lee et al.")


@pytest.mark.parametrize(
    ("sex", "bfi", "high"),
    [
        ("M", 4.8, True),
        ("M", 4.7, False),
        ("M", 3.0, False),
        ("F", 5.9, True),
        ("F", 5.8, False),
        ("F", 5.0, False),
    ],
)
def test_high_bfi_cut_offs_by_sex(sex: str, bfi: float, high: bool) -> None:
    flag = high_bfi_flag(bfi, sex, None)  # type: ignore[arg-type]
    assert flag.value is high
    assert flag.cutoff == {"M": 4.7, "F": 5.8}[sex]
    assert flag.cutoffs == HIGH_BFI_CM2_KG and flag.comparison == ">"


@pytest.mark.parametrize(("bfi", "smi"), [(4.704, 39.996), (4.7049, 31.03)])
def test_flag_carries_the_index_unrounded(bfi: float, smi: float) -> None:
    """The flag is decided on the index as reported and shows that same value."""
    high = high_bfi_flag(bfi, "M", None)
    assert high.value is True and high.measured == bfi
    low = low_smi_flag(smi, "M", None)
    assert low.value is True and low.measured == smi


def test_flag_without_sex_or_index_is_null_with_the_reason() -> None:
    no_sex = low_smi_flag(30.0, None, None)
    assert no_sex.value is None and no_sex.cutoff is None
    assert "sex" in str(no_sex.reason) and no_sex.measured == 30.0
    no_index = high_bfi_flag(None, "M", "height unknown")
    assert no_index.value is None and "height unknown" in str(no_index.reason)
