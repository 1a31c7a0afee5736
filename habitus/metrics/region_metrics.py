"""Waist, torso and L3 measurements from the per-slice trunk statistics.

Units: voxel counts x voxel volume (mm3) / 1000 = cm3; pixel counts x pixel area (mm2) / 100
= cm2. The waist length is the number of waist slices x the slice interval, so that the
average area (volume / length) is exactly the mean of the per-slice areas.
"""

from __future__ import annotations

from habitus.labels import TISSUE_CLASSES, Tissue
from habitus.metrics.indices import per_height_squared, per_weight
from habitus.metrics.ranges import CanonicalRange, MeasuredRegions
from habitus.metrics.schema import (
    ClassMeasurement,
    L3Metrics,
    PatientInfo,
    SliceRange,
    SourceInstance,
    TorsoMetrics,
    WaistMetrics,
)
from habitus.metrics.slice_stats import FAT, SliceStats

MUSCLE = (Tissue.MUSCLE,)

_WAIST_VALUES = (
    "length_cm",
    "muscle_cm3",
    "fat_cm3",
    "visceral_fat_cm3",
    "subcutaneous_fat_cm3",
    "average_sma_cm2",
    "average_bfa_cm2",
    "smi_cm2_m2",
    "bfi_cm2_kg",
    "muscle_mean_hu",
)
_L3_VALUES = ("sma_cm2", "vat_cm2", "sat_cm2", "vat_sat_ratio", "muscle_mean_hu", "smi_cm2_m2")


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def waist_metrics(
    stats: SliceStats,
    regions: MeasuredRegions,
    patient: PatientInfo,
    report_range: SliceRange | None,
) -> WaistMetrics:
    waist = regions.waist
    if waist is None:
        reason = regions.waist_reason or "waist not found"
        return WaistMetrics(
            available=False,
            reason=reason,
            missing={name: reason for name in _WAIST_VALUES},
        )
    lo, hi = waist.lo, waist.hi
    n_slices = hi - lo + 1
    length_cm = n_slices * stats.slice_interval_mm / 10.0
    muscle = stats.volume_cm3(lo, hi, MUSCLE)
    fat = stats.volume_cm3(lo, hi, FAT)
    sma = muscle / length_cm
    bfa = fat / length_cm
    missing: dict[str, str] = {}
    smi, why = per_height_squared(sma, patient, None)
    if why:
        missing["smi_cm2_m2"] = why
    bfi, why = per_weight(bfa, patient, None)
    if why:
        missing["bfi_cm2_kg"] = why
    muscle_hu = stats.mean_hu(lo, hi, Tissue.MUSCLE)
    if muscle_hu is None:
        missing["muscle_mean_hu"] = "no muscle in the waist"
    return WaistMetrics(
        available=True,
        range=report_range,
        length_cm=round(length_cm, 2),
        muscle_cm3=round(muscle, 2),
        fat_cm3=round(fat, 2),
        visceral_fat_cm3=round(stats.volume_cm3(lo, hi, (Tissue.AVF,)), 2),
        subcutaneous_fat_cm3=round(stats.volume_cm3(lo, hi, (Tissue.SF,)), 2),
        average_sma_cm2=round(sma, 2),
        average_bfa_cm2=round(bfa, 2),
        smi_cm2_m2=_r(smi),
        bfi_cm2_kg=_r(bfi, 3),
        muscle_mean_hu=_r(muscle_hu, 1),
        missing=missing,
    )


def torso_metrics(
    stats: SliceStats,
    regions: MeasuredRegions,
    patient: PatientInfo,
    report_range: SliceRange | None,
) -> TorsoMetrics:
    torso = regions.torso
    if torso is None:
        reason = "; ".join(regions.torso_reasons) or "no torso found"
        return TorsoMetrics(
            complete=False,
            missing={
                name: reason for name in ("muscle_cm3", "fat_cm3", "smi_cm3_m2", "bfi_cm3_kg")
            },
        )
    muscle = stats.volume_cm3(torso.lo, torso.hi, MUSCLE)
    fat = stats.volume_cm3(torso.lo, torso.hi, FAT)
    missing: dict[str, str] = {}
    incomplete = None
    if not regions.torso_complete:
        incomplete = "torso not fully covered: " + "; ".join(regions.torso_reasons)
    smi, why = per_height_squared(None if incomplete else muscle, patient, incomplete)
    if why:
        missing["smi_cm3_m2"] = why
    bfi, why = per_weight(None if incomplete else fat, patient, incomplete)
    if why:
        missing["bfi_cm3_kg"] = why
    return TorsoMetrics(
        complete=regions.torso_complete,
        range=report_range,
        top_limit=regions.torso_top_limit,
        bottom_limit=regions.torso_bottom_limit,
        classes=_classes(stats, torso),
        muscle_cm3=round(muscle, 2),
        fat_cm3=round(fat, 2),
        smi_cm3_m2=_r(smi, 1),
        bfi_cm3_kg=_r(bfi, 2),
        missing=missing,
    )


def _classes(stats: SliceStats, r: CanonicalRange) -> list[ClassMeasurement]:
    rows = []
    for tissue in TISSUE_CLASSES:
        mean = stats.mean_hu(r.lo, r.hi, tissue)
        rows.append(
            ClassMeasurement(
                label=int(tissue),
                name=tissue.display_name,
                voxels=stats.voxels(r.lo, r.hi, (tissue,)),
                volume_cm3=round(stats.volume_cm3(r.lo, r.hi, (tissue,)), 3),
                mean_hu=_r(mean, 1),
            )
        )
    return rows


def l3_metrics(
    stats: SliceStats,
    regions: MeasuredRegions,
    patient: PatientInfo,
    slice_index: int | None,
    z_mm: float | None,
    instance: SourceInstance | None = None,
) -> L3Metrics:
    c = regions.l3_slice
    if c is None:
        reason = regions.l3_reason or "L3 not found"
        return L3Metrics(available=False, reason=reason, missing={n: reason for n in _L3_VALUES})
    sma = stats.area_cm2(c, MUSCLE)
    vat = stats.area_cm2(c, (Tissue.AVF,))
    sat = stats.area_cm2(c, (Tissue.SF,))
    missing: dict[str, str] = {}
    ratio = vat / sat if sat > 0 else None
    if ratio is None:
        missing["vat_sat_ratio"] = "no subcutaneous fat on the L3 slice"
    muscle_hu = stats.mean_hu(c, c, Tissue.MUSCLE)
    if muscle_hu is None:
        missing["muscle_mean_hu"] = "no muscle on the L3 slice"
    smi, why = per_height_squared(sma, patient, None)
    if why:
        missing["smi_cm2_m2"] = why
    return L3Metrics(
        available=True,
        slice_index=slice_index,
        z_mm=_r(z_mm),
        instance=instance,
        sma_cm2=round(sma, 2),
        vat_cm2=round(vat, 2),
        sat_cm2=round(sat, 2),
        vat_sat_ratio=_r(ratio, 3),
        muscle_mean_hu=_r(muscle_hu, 1),
        smi_cm2_m2=_r(smi),
        missing=missing,
    )
