"""Find the PET of a PET-CT study: every PT series gets a verdict saying why it was taken or not.

A PET series qualifies when it belongs to the CT's study, is PET Image Storage (single-frame,
not a projection or screen capture), is attenuation corrected (ATTN, or AC, in CorrectedImage;
a non-corrected reconstruction is never quantitative), is axial, its slices form a regular
volume, and it shares the CT's frame of reference or, failing that, overlaps the CT's volume
in patient coordinates. Among those, one in the CT's frame of reference comes first, then the
largest craniocaudal overlap with the CT, then the most slices, then the lowest series number.
The CT chooser never takes a PET: its rules accept modality CT only.
"""

from __future__ import annotations

from dataclasses import dataclass

from habitus.dicom.attributes import integer, text, texts
from habitus.dicom.geometry import StackPlan, axial_deviation_deg, plan_stack
from habitus.dicom.group import SeriesGroup
from habitus.dicom.series_rules import REFUSED_IMAGE_TYPES
from habitus.pet.schema import PetSeries
from habitus.volume import CTVolume, Geometry

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
MAX_AXIAL_DEVIATION_DEG = 10.0
# PET slices of a multi-bed scan are often spaced less evenly than CT slices.
SPACING_TOLERANCE = 0.1
MIN_SLICES = 8


@dataclass(frozen=True)
class PetChoice:
    group: SeriesGroup | None  # None when no PET series qualifies
    plan: StackPlan | None
    chosen: PetSeries | None
    others: list[PetSeries]


@dataclass
class _Candidate:
    group: SeriesGroup
    plan: StackPlan | None
    failures: list[str]
    same_frame: bool
    overlap_mm: float

    def rank(self) -> tuple[int, float, int, float]:
        number = integer(self.group.first, "SeriesNumber")
        return (
            0 if self.same_frame else 1,
            -round(self.overlap_mm, 1),
            -len(self.group.instances),
            number if number is not None else float("inf"),
        )

    def verdict(self, accepted: bool, reasons: list[str]) -> PetSeries:
        first = self.group.first
        return PetSeries(
            series_instance_uid=self.group.series_instance_uid,
            series_number=integer(first, "SeriesNumber"),
            description=text(first, "SeriesDescription"),
            instances=len(self.group.instances),
            corrected_image=list(texts(first, "CorrectedImage")),
            units=text(first, "Units"),
            same_frame_of_reference=self.same_frame,
            overlap_mm=round(self.overlap_mm, 1),
            accepted=accepted,
            reasons=reasons,
        )


def find_pet(series: list[SeriesGroup], ct: CTVolume) -> PetChoice:
    """The PET series to measure uptake on, with a verdict for every PT series."""
    pets = [g for g in series if text(g.first, "Modality").upper() == "PT"]
    assessed = [_assess(g, ct) for g in pets]
    candidates = sorted((c for c in assessed if not c.failures), key=_Candidate.rank)
    if not candidates:
        return PetChoice(None, None, None, [c.verdict(False, c.failures) for c in assessed])
    best = candidates[0]
    others = [
        c.verdict(False, c.failures or [_why_not_preferred(c, best)])
        for c in assessed
        if c is not best
    ]
    return PetChoice(best.group, best.plan, best.verdict(True, _why_chosen(best)), others)


def header_failures(group: SeriesGroup) -> list[str]:
    """Why a series cannot be the PET to measure, judged from its headers alone (no CT, no
    pixels): cheap enough for a service deciding which series a job's input carries."""
    first = group.first
    failures: list[str] = []
    if text(first, "Modality").upper() != "PT":
        failures.append(f"modality {text(first, 'Modality') or '(missing)'}, expected PT")
    sop_class = text(first, "SOPClassUID")
    if sop_class != PET_IMAGE_STORAGE:
        failures.append(f"SOP class {sop_class or '(missing)'}, expected PET Image Storage")
    frames = integer(first, "NumberOfFrames")
    if frames is not None and frames > 1:
        failures.append(f"multi-frame instances ({frames} frames) are not supported")
    image_type = texts(first, "ImageType")
    if any(t in REFUSED_IMAGE_TYPES for t in image_type):
        failures.append(f"ImageType {_joined(image_type)}: not an axial volume")
    corrected = texts(first, "CorrectedImage")
    if "ATTN" not in corrected and "AC" not in corrected:
        failures.append(
            f"CorrectedImage {_joined(corrected)} lacks ATTN: a "
            "non-attenuation-corrected (NAC) reconstruction is not quantitative"
        )
    deviation = axial_deviation_deg(first)
    if deviation is None or deviation > MAX_AXIAL_DEVIATION_DEG:
        failures.append("not axial")
    if len(group.instances) < MIN_SLICES:
        failures.append(f"{len(group.instances)} slice(s), fewer than {MIN_SLICES}")
    return failures


def _assess(group: SeriesGroup, ct: CTVolume) -> _Candidate:
    first = group.first
    failures: list[str] = []
    source = ct.source
    if source is not None and group.study_instance_uid != source.study_instance_uid:
        failures.append("another study than the CT's")
    failures.extend(header_failures(group))
    plan: StackPlan | None = None
    overlap = 0.0
    if not failures:
        plan = plan_stack(
            group.headers,
            [i.name for i in group.instances],
            spacing_tolerance=SPACING_TOLERANCE,
        )
        failures.extend(plan.problems)
        if plan.geometry is not None:
            overlap = _z_overlap_mm(plan.geometry, len(group.instances), ct)
    frame = text(first, "FrameOfReferenceUID")
    same_frame = bool(frame) and source is not None and frame == source.frame_of_reference_uid
    if not failures and overlap <= 0:
        failures.append("its volume does not overlap the CT's in patient coordinates")
    return _Candidate(group, plan, failures, same_frame, overlap)


def _joined(values: tuple[str, ...]) -> str:
    return "\\".join(values) or "(missing)"


def _z_extent(geometry: Geometry, slices: int) -> tuple[float, float]:
    half = geometry.spacing[0] / 2.0
    ends = sorted((geometry.z_of_slice(0), geometry.z_of_slice(slices - 1)))
    return ends[0] - half, ends[1] + half


def _z_overlap_mm(pet: Geometry, slices: int, ct: CTVolume) -> float:
    p_lo, p_hi = _z_extent(pet, slices)
    c_lo, c_hi = _z_extent(ct.geometry, ct.shape[0])
    return max(0.0, min(p_hi, c_hi) - max(p_lo, c_lo))


def _why_chosen(best: _Candidate) -> list[str]:
    frame = (
        "shares the CT's frame of reference"
        if best.same_frame
        else "in another frame of reference than the CT, but its volume overlaps the CT's: "
        "check the registration"
    )
    return [
        "attenuation-corrected PET of the CT's study, axial, forms a regular volume",
        f"{frame}; overlaps the CT over {best.overlap_mm:.0f} mm craniocaudally",
    ]


def _why_not_preferred(other: _Candidate, best: _Candidate) -> str:
    if other.same_frame != best.same_frame:
        why = "the CT's frame of reference preferred"
    elif round(other.overlap_mm, 1) != round(best.overlap_mm, 1):
        why = f"larger overlap with the CT ({best.overlap_mm:.0f} over {other.overlap_mm:.0f} mm)"
    elif len(other.group.instances) != len(best.group.instances):
        why = "more slices preferred"
    else:
        why = "equal otherwise; the lower series number is taken"
    number = integer(best.group.first, "SeriesNumber")
    return f"suitable, but series {number} is preferred: {why}"
