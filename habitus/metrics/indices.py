"""Indices normalised by height or weight, and the paper's sarcopenia and adiposity cut-offs."""

from __future__ import annotations

from typing import Literal

from habitus.metrics.schema import Flag, PatientInfo

# Lee et al., Clinical Nutrition 2021 (DESIGN.md §2), by sex.
LOW_SMI_CM2_M2: dict[str, float] = {"M": 40.0, "F": 35.0}  # low when below
HIGH_BFI_CM2_KG: dict[str, float] = {"M": 4.7, "F": 5.8}  # high when above

# when PatientInfo.missing does not say why (habitus.patient fills it in)
NO_HEIGHT = "height unknown: pass it to the analysis or record PatientSize in the DICOM header"
NO_WEIGHT = "weight unknown: pass it to the analysis or record PatientWeight in the DICOM header"
NO_SEX = "sex unknown (PatientSex is not M or F): the cut-off depends on it"


def per_height_squared(
    value: float | None, patient: PatientInfo, why_no_value: str | None
) -> tuple[float | None, str | None]:
    """value / height (m)^2, or None with the reason."""
    if value is None:
        return None, why_no_value
    if patient.height_cm is None:
        return None, patient.missing.get("height_cm", NO_HEIGHT)
    return value / (patient.height_cm / 100.0) ** 2, None


def per_weight(
    value: float | None, patient: PatientInfo, why_no_value: str | None
) -> tuple[float | None, str | None]:
    """value / weight (kg), or None with the reason."""
    if value is None:
        return None, why_no_value
    if patient.weight_kg is None:
        return None, patient.missing.get("weight_kg", NO_WEIGHT)
    return value / patient.weight_kg, None


def low_smi_flag(smi: float | None, sex: Literal["M", "F"] | None, why: str | None) -> Flag:
    return _flag("low_smi", "waist.smi_cm2_m2", smi, "cm2/m2", "<", LOW_SMI_CM2_M2, sex, why)


def high_bfi_flag(bfi: float | None, sex: Literal["M", "F"] | None, why: str | None) -> Flag:
    return _flag("high_bfi", "waist.bfi_cm2_kg", bfi, "cm2/kg", ">", HIGH_BFI_CM2_KG, sex, why)


def _flag(
    name: Literal["low_smi", "high_bfi"],
    index: str,
    measured: float | None,
    unit: str,
    comparison: Literal["<", ">"],
    cutoffs: dict[str, float],
    sex: Literal["M", "F"] | None,
    why_no_index: str | None,
) -> Flag:
    """``measured`` is the index as the report gives it (rounded to the report's precision):
    the flag is decided on that value and carries it unchanged, so that the report never
    shows a measured value beside a verdict that the value shown does not support."""
    cutoff = cutoffs[sex] if sex is not None else None
    value: bool | None = None
    reason: str | None = None
    if measured is None:
        reason = f"{index} not available: {why_no_index}" if why_no_index else f"no {index}"
    elif cutoff is None:
        reason = NO_SEX
    else:
        value = measured < cutoff if comparison == "<" else measured > cutoff
    return Flag(
        name=name,
        value=value,
        index=index,
        measured=measured,
        unit=unit,
        comparison=comparison,
        cutoff=cutoff,
        cutoffs=dict(cutoffs),
        sex=sex,
        reason=reason,
    )
