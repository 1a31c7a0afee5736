"""The numeric results as a flat list of named measurements with UCUM units, for the SR."""

from __future__ import annotations

from typing import Literal

from habitus.metrics.schema import BodyComposition, NamedMeasurement, SliceRange

HU = "[hnsf'U]"  # UCUM code of the Hounsfield unit

# (model field, key, label, UCUM unit)
_WAIST = [
    ("length_cm", "waist.length", "Waist length (last rib to iliac crest)", "cm"),
    ("muscle_cm3", "waist.muscle_volume", "Skeletal muscle volume in the waist", "cm3"),
    (
        "fat_cm3",
        "waist.fat_volume",
        "Body fat volume (visceral + subcutaneous) in the waist",
        "cm3",
    ),
    (
        "visceral_fat_cm3",
        "waist.visceral_fat_volume",
        "Abdominal visceral fat volume in the waist",
        "cm3",
    ),
    (
        "subcutaneous_fat_cm3",
        "waist.subcutaneous_fat_volume",
        "Subcutaneous fat volume in the waist",
        "cm3",
    ),
    ("average_sma_cm2", "waist.average_sma", "Average skeletal muscle area in the waist", "cm2"),
    ("average_bfa_cm2", "waist.average_bfa", "Average body fat area in the waist", "cm2"),
    ("smi_cm2_m2", "waist.smi", "Skeletal muscle index (waist average SMA / height^2)", "cm2/m2"),
    ("bfi_cm2_kg", "waist.bfi", "Body fat index (waist average BFA / weight)", "cm2/kg"),
    (
        "muscle_mean_hu",
        "waist.muscle_mean_attenuation",
        "Mean skeletal muscle attenuation in the waist",
        HU,
    ),
]
_TORSO = [
    ("muscle_cm3", "torso.muscle_volume", "Skeletal muscle volume of the torso", "cm3"),
    (
        "fat_cm3",
        "torso.fat_volume",
        "Body fat volume (visceral + subcutaneous) of the torso",
        "cm3",
    ),
    ("smi_cm3_m2", "torso.smi", "Torso skeletal muscle index (volume / height^2)", "cm3/m2"),
    ("bfi_cm3_kg", "torso.bfi", "Torso body fat index (volume / weight)", "cm3/kg"),
]
_L3 = [
    ("sma_cm2", "l3.sma", "Skeletal muscle area at L3", "cm2"),
    ("vat_cm2", "l3.vat", "Visceral adipose tissue area at L3", "cm2"),
    ("sat_cm2", "l3.sat", "Subcutaneous adipose tissue area at L3", "cm2"),
    ("vat_sat_ratio", "l3.vat_sat_ratio", "Visceral to subcutaneous fat area ratio at L3", "1"),
    ("muscle_mean_hu", "l3.muscle_mean_attenuation", "Mean skeletal muscle attenuation at L3", HU),
    ("smi_cm2_m2", "l3.smi", "Skeletal muscle index at L3 (SMA / height^2)", "cm2/m2"),
]


def named_measurements(result: BodyComposition) -> list[NamedMeasurement]:
    """Every computed number (nulls left out) with the slices it refers to."""
    out: list[NamedMeasurement] = []
    if result.waist.available and result.waist.range is not None:
        out += _rows(result.waist.model_dump(), _WAIST, "waist", _span(result.waist.range))
    if result.torso.range is not None:
        rows = _TORSO if result.torso.complete else _TORSO[:2]
        out += _rows(result.torso.model_dump(), rows, "torso", _span(result.torso.range))
    if result.l3.available and result.l3.slice_index is not None:
        k = result.l3.slice_index
        out += _rows(result.l3.model_dump(), _L3, "l3", (k, k))
    return out


def _span(r: SliceRange) -> tuple[int, int]:
    return (r.first_slice, r.last_slice)


def _rows(
    values: dict[str, object],
    table: list[tuple[str, str, str, str]],
    group: Literal["waist", "torso", "l3"],
    slices: tuple[int, int],
) -> list[NamedMeasurement]:
    rows = []
    for field, key, label, unit in table:
        value = values.get(field)
        if isinstance(value, int | float):
            rows.append(
                NamedMeasurement(
                    key=key, label=label, value=float(value), unit=unit, group=group, slices=slices
                )
            )
    return rows
