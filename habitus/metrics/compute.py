"""compute_body_composition: landmarks, waist, torso, L3, indices, flags and quality checks."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from habitus.anatomy import find_anatomy
from habitus.errors import InputRefused
from habitus.metrics.contrast import assess_contrast
from habitus.metrics.indices import high_bfi_flag, low_smi_flag
from habitus.metrics.quality import quality_checks
from habitus.metrics.ranges import measured_regions, report_regions, source_instance
from habitus.metrics.region_metrics import l3_metrics, torso_metrics, waist_metrics
from habitus.metrics.schema import BodyComposition, Flags, PatientInfo
from habitus.metrics.slice_stats import trunk_slice_stats
from habitus.metrics.summary import summary_lines
from habitus.volume import CTVolume


def compute_body_composition(
    labels: NDArray[np.uint8], volume: CTVolume, patient: PatientInfo
) -> BodyComposition:
    """Everything the report, SR and preview need beyond the whole-scan class volumes.

    ``labels`` holds values of habitus.labels.Tissue on the grid of ``volume``. Raises
    InputRefused when the two do not match, GeometryRefused when the slices are not axial.
    """
    if labels.shape != volume.hu.shape:
        raise InputRefused(
            f"expected a label map of the CT's shape {volume.hu.shape}, found {labels.shape}"
        )
    anatomy = find_anatomy(labels, volume.geometry, volume.hu)  # the CT finds thin rib tips
    regions = measured_regions(anatomy)
    stats = trunk_slice_stats(labels, volume, anatomy, regions.all_slices())
    where = report_regions(regions, anatomy, volume.source)
    waist = waist_metrics(stats, regions, patient, where.waist)
    torso = torso_metrics(stats, regions, patient, where.torso)
    l3_z = None if regions.l3_slice is None else float(anatomy.frame.z_mm[regions.l3_slice])
    l3_instance = (
        None
        if where.l3_slice is None or l3_z is None
        else source_instance(volume.source, where.l3_slice, l3_z)
    )
    l3 = l3_metrics(stats, regions, patient, where.l3_slice, l3_z, l3_instance)
    why_no_smi = waist.missing.get("smi_cm2_m2")
    why_no_bfi = waist.missing.get("bfi_cm2_kg")
    flags = Flags(
        low_smi=low_smi_flag(waist.smi_cm2_m2, patient.sex, why_no_smi),
        high_bfi=high_bfi_flag(waist.bfi_cm2_kg, patient.sex, why_no_bfi),
    )
    contrast = assess_contrast(labels, volume, anatomy)
    quality = quality_checks(labels, volume, anatomy, regions, stats, contrast)
    return BodyComposition(
        landmarks=anatomy.landmarks,
        regions=where,
        waist=waist,
        torso=torso,
        l3=l3,
        flags=flags,
        quality=quality,
        contrast=contrast,
        summary_lines=summary_lines(
            waist, l3, torso, [flags.low_smi, flags.high_bfi], quality, contrast
        ),
    )
