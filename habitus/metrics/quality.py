"""Quality checks on the scan and the measurements, and the one ``review_required`` flag.

Each check says what it looked at and the rule it applied. A "warn" means a person should
look at the preview before the numbers are used; every warning's message is listed in
``review_reasons``. The thresholds are rules of thumb (DESIGN.md §2 and common CT practice),
stated in docs/metrics.md.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from habitus.anatomy import Anatomy
from habitus.labels import Tissue
from habitus.metrics.contrast import UNKNOWN, ContrastAssessment
from habitus.metrics.ranges import MeasuredRegions
from habitus.metrics.schema import Quality, QualityCheck
from habitus.metrics.slice_stats import FAT, SliceStats
from habitus.volume import CTVolume

MAX_SLICE_THICKNESS_MM = 5.0
ARMS_MIN_AREA_CM2 = 5.0
METAL_HU = 2500.0
METAL_MIN_CM3 = 0.1
MUSCLE_FRACTION = (0.05, 0.60)
FAT_FRACTION = (0.03, 0.85)
MIN_LANDMARK_CONFIDENCE = 0.6


def quality_checks(
    labels: NDArray[np.uint8],
    volume: CTVolume,
    anatomy: Anatomy,
    regions: MeasuredRegions,
    stats: SliceStats,
    contrast_phase: ContrastAssessment,
) -> Quality:
    checks = [
        slice_thickness(volume),
        *coverage(regions),
        truncation(anatomy, regions),
        arms_in_field(anatomy, regions),
        contrast(contrast_phase),
        metal(labels, volume, anatomy, regions),
        tissue_balance(stats, regions),
        landmark_consistency(anatomy),
        landmark_confidence(anatomy, regions),
    ]
    reasons = [c.message for c in checks if c.status == "warn"]
    return Quality(checks=checks, review_required=bool(reasons), review_reasons=reasons)


def slice_thickness(volume: CTVolume) -> QualityCheck:
    thickness = volume.slice_thickness_mm
    source = "nominal slice thickness"
    if thickness is None:
        thickness, source = float(volume.geometry.spacing[0]), "slice interval (thickness unknown)"
    rule = f"warn above {MAX_SLICE_THICKNESS_MM:g} mm"
    if thickness > MAX_SLICE_THICKNESS_MM:
        return QualityCheck(
            name="slice_thickness",
            status="warn",
            value=thickness,
            threshold=rule,
            message=f"{source} {thickness:g} mm is above {MAX_SLICE_THICKNESS_MM:g} mm: landmarks "
            "and areas are coarse",
        )
    return QualityCheck(
        name="slice_thickness",
        status="pass",
        value=thickness,
        threshold=rule,
        message=f"{source} {thickness:g} mm",
    )


def coverage(regions: MeasuredRegions) -> list[QualityCheck]:
    """Whether the scan covers what each metric needs."""
    waist = QualityCheck(
        name="waist_coverage",
        status="pass" if regions.waist else "warn",
        threshold="last rib and iliac crest both inside the scan, crest below the rib",
        message="waist fully covered" if regions.waist else str(regions.waist_reason),
    )
    l3 = QualityCheck(
        name="l3_coverage",
        status="pass" if regions.l3_slice is not None else "warn",
        threshold="L3 identified and its vertebral body entirely inside the scan",
        message="L3 found" if regions.l3_slice is not None else str(regions.l3_reason),
    )
    torso_message = (
        "torso fully covered"
        if regions.torso_complete
        else "torso not fully covered: " + "; ".join(regions.torso_reasons)
    )
    torso = QualityCheck(
        name="torso_coverage",
        status="pass" if regions.torso_complete else "warn",
        threshold="top of the thoracic cage and bottom of the pelvis inside the scan",
        message=torso_message,
    )
    return [waist, l3, torso]


def _measured_slices(regions: MeasuredRegions) -> tuple[list[int], str]:
    """The slices whose numbers matter most: waist and L3, else the torso range."""
    focus: set[int] = set()
    if regions.waist is not None:
        focus.update(regions.waist.slices)
    if regions.l3_slice is not None:
        focus.add(regions.l3_slice)
    if focus:
        return sorted(focus), "the waist and L3 slices"
    if regions.torso is not None:
        return list(regions.torso.slices), "the torso"
    return [], "no measured slices"


def truncation(anatomy: Anatomy, regions: MeasuredRegions) -> QualityCheck:
    slices, where = _measured_slices(regions)
    rule = "warn when the trunk touches the edge of the image in any measured slice"
    if not slices:
        return QualityCheck(
            name="fov_truncation", status="not_applicable", threshold=rule, message=where
        )
    trunk = anatomy.parts.trunk[slices]
    edge = (
        trunk[:, 0, :].any(axis=1)
        | trunk[:, -1, :].any(axis=1)
        | trunk[:, :, 0].any(axis=1)
        | trunk[:, :, -1].any(axis=1)
    )
    touching = int(edge.sum())
    if touching:
        return QualityCheck(
            name="fov_truncation",
            status="warn",
            value=float(touching),
            threshold=rule,
            message=f"the body touches the edge of the field of view in {touching} of "
            f"{len(slices)} slices of {where}: tissue outside it is missing from the areas",
        )
    return QualityCheck(
        name="fov_truncation",
        status="pass",
        value=0.0,
        threshold=rule,
        message=f"body inside the field of view in {where}",
    )


def arms_in_field(anatomy: Anatomy, regions: MeasuredRegions) -> QualityCheck:
    slices, where = _measured_slices(regions)
    rule = f"warn when arms cover more than {ARMS_MIN_AREA_CM2:g} cm2 of a measured slice"
    if not slices:
        return QualityCheck(
            name="arms_in_field", status="not_applicable", threshold=rule, message=where
        )
    py, px = anatomy.frame.pooled_mm
    areas = np.array([_beside_trunk(anatomy, c) for c in slices]) * py * px / 100.0
    largest = float(areas.max())
    if largest > ARMS_MIN_AREA_CM2:
        return QualityCheck(
            name="arms_in_field",
            status="warn",
            value=round(largest, 1),
            threshold=rule,
            message=f"arms lie beside the torso in {where} (up to {largest:.0f} cm2 in a "
            "slice); they were excluded from the measurements: check the exclusion on the "
            "preview",
        )
    return QualityCheck(
        name="arms_in_field",
        status="pass",
        value=round(largest, 1),
        threshold=rule,
        message=f"no arms beside the torso in {where}",
    )


def _beside_trunk(anatomy: Anatomy, c: int) -> int:
    """Arm pixels of slice c lying to the side of the trunk (not behind or in front of it)."""
    trunk_cols = np.flatnonzero(anatomy.parts.trunk[c].any(axis=0))
    arm_cols = anatomy.parts.arms[c].sum(axis=0)
    if trunk_cols.size == 0:
        return int(arm_cols.sum())
    return int(arm_cols[: trunk_cols.min()].sum() + arm_cols[trunk_cols.max() + 1 :].sum())


def contrast(assessment: ContrastAssessment) -> QualityCheck:
    """The contrast phase (habitus.metrics.contrast) as a check: enhanced scans need review."""
    rule = (
        "warn when intravenous contrast is found (aorta or liver enhanced): attenuation is then "
        "not comparable with unenhanced norms"
    )
    aorta_hu = assessment.median_hu("aorta")
    value = aorta_hu if aorta_hu is not None else assessment.median_hu("liver")
    if assessment.enhanced:
        phase = (
            "phase unknown"
            if assessment.phase == UNKNOWN
            else f"{str(assessment.phase).replace('_', '-')} phase"
        )
        return QualityCheck(
            name="contrast",
            status="warn",
            value=value,
            threshold=rule,
            message=f"intravenous contrast, {phase} ({assessment.reason}): muscle and organ "
            "attenuation (mean HU, myosteatosis) is not comparable with unenhanced norms",
        )
    if assessment.enhanced is None:
        return QualityCheck(
            name="contrast",
            status="not_applicable",
            value=value,
            threshold=rule,
            message=f"contrast phase unknown: {assessment.reason}",
        )
    return QualityCheck(
        name="contrast",
        status="pass",
        value=value,
        threshold=rule,
        message=f"no intravenous contrast: {assessment.reason}",
    )


def metal(
    labels: NDArray[np.uint8], volume: CTVolume, anatomy: Anatomy, regions: MeasuredRegions
) -> QualityCheck:
    rule = f"warn when at least {METAL_MIN_CM3:g} cm3 of the body is above {METAL_HU:g} HU"
    slices = sorted(regions.all_slices())
    if not slices:
        return QualityCheck(
            name="metal", status="not_applicable", threshold=rule, message="no measured slices"
        )
    frame = anatomy.frame
    canonical_labels = frame.canonical(labels)
    canonical_hu = frame.canonical(volume.hu)
    count = 0
    for c in slices:
        count += int(((canonical_hu[c] >= METAL_HU) & (canonical_labels[c] > 0)).sum())
    cm3 = count * volume.geometry.voxel_volume_mm3 / 1000.0
    if cm3 >= METAL_MIN_CM3:
        return QualityCheck(
            name="metal",
            status="warn",
            value=round(cm3, 2),
            threshold=rule,
            message=f"{cm3:.1f} cm3 above {METAL_HU:g} HU in the measured slices: metal "
            "implants or their streak artefacts may distort the tissue classes",
        )
    return QualityCheck(
        name="metal",
        status="pass",
        value=round(cm3, 2),
        threshold=rule,
        message="no metal in the measured slices",
    )


def tissue_balance(stats: SliceStats, regions: MeasuredRegions) -> QualityCheck:
    rule = (
        f"muscle {MUSCLE_FRACTION[0]:.0%} to {MUSCLE_FRACTION[1]:.0%} and fat "
        f"{FAT_FRACTION[0]:.0%} to {FAT_FRACTION[1]:.0%} of the body volume"
    )
    region, where = (regions.waist, "waist") if regions.waist else (regions.torso, "torso")
    if region is None:
        return QualityCheck(
            name="tissue_balance", status="not_applicable", threshold=rule, message="no torso"
        )
    everything = [t for t in Tissue if t != Tissue.BACKGROUND]
    total = stats.voxels(region.lo, region.hi, everything)
    if total == 0:
        return QualityCheck(
            name="tissue_balance",
            status="warn",
            threshold=rule,
            message=f"no labelled body in the {where}",
        )
    muscle = stats.voxels(region.lo, region.hi, (Tissue.MUSCLE,)) / total
    fat = stats.voxels(region.lo, region.hi, FAT) / total
    problems = []
    if not MUSCLE_FRACTION[0] <= muscle <= MUSCLE_FRACTION[1]:
        problems.append(f"muscle is {muscle:.0%} of the {where}")
    if not FAT_FRACTION[0] <= fat <= FAT_FRACTION[1]:
        problems.append(f"fat is {fat:.0%} of the {where}")
    if problems:
        return QualityCheck(
            name="tissue_balance",
            status="warn",
            value=round(muscle, 3),
            threshold=rule,
            message="implausible tissue balance: "
            + ", ".join(problems)
            + " (segmentation failure?)",
        )
    return QualityCheck(
        name="tissue_balance",
        status="pass",
        value=round(muscle, 3),
        threshold=rule,
        message=f"muscle {muscle:.0%} and fat {fat:.0%} of the {where}",
    )


def landmark_consistency(anatomy: Anatomy) -> QualityCheck:
    findings = anatomy.landmarks.findings
    rule = "crest below the last rib, L3 within the waist, the two vertebral counts agree"
    if findings:
        return QualityCheck(
            name="landmark_consistency",
            status="warn",
            threshold=rule,
            message="landmarks disagree: " + "; ".join(findings),
        )
    return QualityCheck(
        name="landmark_consistency", status="pass", threshold=rule, message="landmarks agree"
    )


def landmark_confidence(anatomy: Anatomy, regions: MeasuredRegions) -> QualityCheck:
    marks = anatomy.landmarks
    used = []
    if regions.waist is not None:
        used += [marks.last_rib, marks.iliac_crest]
    if regions.l3_slice is not None:
        used.append(marks.l3)
    rule = f"warn when a landmark used has confidence below {MIN_LANDMARK_CONFIDENCE}"
    if not used:
        return QualityCheck(
            name="landmark_confidence",
            status="not_applicable",
            threshold=rule,
            message="no landmark-based measurement",
        )
    weak = [m for m in used if m.confidence < MIN_LANDMARK_CONFIDENCE]
    if weak:
        detail = "; ".join(f"{m.name.value} {m.confidence:.2f} ({m.reason})" for m in weak)
        return QualityCheck(
            name="landmark_confidence",
            status="warn",
            value=min(m.confidence for m in weak),
            threshold=rule,
            message=f"uncertain landmarks: {detail}",
        )
    return QualityCheck(
        name="landmark_confidence",
        status="pass",
        value=min(m.confidence for m in used),
        threshold=rule,
        message="landmarks found with good confidence",
    )
