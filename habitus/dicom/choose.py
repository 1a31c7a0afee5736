"""Choose the series to analyse: every series gets a verdict saying why it was taken or not.

A series is a candidate when it passes every rule of :class:`SeriesRules` and its slices
form a regular volume. ORIGINAL candidates come first; a DERIVED axial candidate (a
reconstruction made from other images) is taken, with a warning, only when there is none.
The preferred candidate has a soft-tissue kernel, then the thinnest slices, then the most
slices. When no series passes the rules, :class:`NoSuitableSeries`
lists each with its reasons; when some pass the rules but none stacks into a volume,
:class:`GeometryRefused` says what is wrong with their slices.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from habitus.dicom.attributes import integer, number, text, texts
from habitus.dicom.geometry import StackPlan, axial_deviation_deg, plan_stack
from habitus.dicom.group import SeriesGroup
from habitus.dicom.series_rules import SECONDARY_CAPTURE_SOP_CLASS_PREFIX, KernelClass, SeriesRules
from habitus.errors import GeometryRefused, NoSuitableSeries

KERNEL_WORDS: dict[KernelClass, str] = {
    KernelClass.SOFT: "soft-tissue",
    KernelClass.UNKNOWN: "unclassified",
    KernelClass.SHARP: "sharp (bone/lung)",
}


@dataclass(frozen=True)
class SeriesVerdict:
    """A series as the chooser saw it; fields match habitus.outputs.report.SeriesInfo."""

    series_instance_uid: str
    series_number: int | None
    description: str
    modality: str
    instances: int
    slice_thickness_mm: float | None
    convolution_kernel: str
    accepted: bool
    reasons: list[str] = field(default_factory=list)  # why refused, or why preferred


@dataclass
class _Assessment:
    group: SeriesGroup
    plan: StackPlan | None
    rule_failures: list[str]
    geometry_failures: list[str]
    thickness_mm: float | None
    kernel: str
    kernel_class: KernelClass
    derived: bool  # a reconstruction made from other images, not an acquisition

    @property
    def passes_rules(self) -> bool:
        return not self.rule_failures

    @property
    def candidate(self) -> bool:
        return not self.rule_failures and not self.geometry_failures

    @property
    def effective_thickness(self) -> float:
        """Thickness for ranking: the nominal one, else the slice interval."""
        if self.thickness_mm is not None:
            return self.thickness_mm
        interval = self.plan.slice_interval_mm if self.plan is not None else None
        return interval if interval else float("inf")

    def rank(self) -> tuple[int, float, int, float]:
        number_ = integer(self.group.first, "SeriesNumber")
        return (
            int(self.kernel_class),
            round(self.effective_thickness, 3),
            -len(self.group.instances),
            number_ if number_ is not None else float("inf"),
        )

    def describe(self) -> str:
        number_ = integer(self.group.first, "SeriesNumber")
        label = f"series {number_}" if number_ is not None else "series without number"
        description = text(self.group.first, "SeriesDescription")
        return (
            f"{label} '{description}' ({text(self.group.first, 'Modality') or 'no modality'}, "
            f"{len(self.group.instances)} instances, {self.group.series_instance_uid})"
        )

    def verdict(self, accepted: bool, reasons: list[str]) -> SeriesVerdict:
        first = self.group.first
        return SeriesVerdict(
            series_instance_uid=self.group.series_instance_uid,
            series_number=integer(first, "SeriesNumber"),
            description=text(first, "SeriesDescription"),
            modality=text(first, "Modality"),
            instances=len(self.group.instances),
            slice_thickness_mm=self.thickness_mm,
            convolution_kernel=self.kernel,
            accepted=accepted,
            reasons=reasons,
        )


@dataclass(frozen=True)
class Choice:
    group: SeriesGroup
    plan: StackPlan
    chosen: SeriesVerdict
    others: list[SeriesVerdict]
    warnings: list[str]


def choose_series(series: list[SeriesGroup], rules: SeriesRules) -> Choice:
    """The series to analyse, with a verdict for every series of the input."""
    assessments = [_assess(group, rules) for group in series]
    if not any(a.passes_rules for a in assessments):
        listing = "\n".join(
            f"- {a.describe()}: {'; '.join(a.rule_failures + a.geometry_failures)}"
            for a in assessments
        )
        raise NoSuitableSeries(
            f"no series can be analysed; expected {_expectation(rules)}, found "
            f"{len(assessments)} series:\n{listing}"
        )
    all_candidates = [a for a in assessments if a.candidate]
    originals = [a for a in all_candidates if not a.derived]
    candidates = sorted(originals or all_candidates, key=_Assessment.rank)
    if not candidates:
        refused = [a for a in assessments if a.passes_rules]
        listing = "\n".join(f"- {a.describe()}: {'; '.join(a.geometry_failures)}" for a in refused)
        raise GeometryRefused(
            f"the slices do not form a regular volume in {len(refused)} otherwise suitable "
            f"series:\n{listing}"
        )
    best = candidates[0]
    warnings = [
        f"{a.describe()} would have been preferred but was refused: "
        f"{'; '.join(a.geometry_failures)}"
        for a in assessments
        if a.passes_rules and not a.candidate and a.rank() < best.rank()
    ]
    if best.derived:
        warnings.insert(0, _derived_warning(best))
    verdicts: list[SeriesVerdict] = []
    chosen: SeriesVerdict | None = None
    for a in assessments:
        if a is best:
            chosen = a.verdict(True, _why_preferred(best, len(candidates)))
        elif a.candidate and a.derived and not best.derived:
            verdicts.append(a.verdict(False, [_why_original_preferred(a, best)]))
        elif a.candidate:
            verdicts.append(a.verdict(False, [_why_not_preferred(a, best)]))
        else:
            verdicts.append(a.verdict(False, a.rule_failures + a.geometry_failures))
    assert chosen is not None and best.plan is not None  # best is a candidate
    return Choice(best.group, best.plan, chosen, verdicts, warnings)


def _expectation(rules: SeriesRules) -> str:
    return (
        f"modality {rules.modality}, axial CT images (ORIGINAL, or DERIVED axial "
        f"reconstructions), at least {rules.min_slices} "
        f"slices, at most {rules.max_slice_thickness_mm:g} mm thick"
    )


def _assess(group: SeriesGroup, rules: SeriesRules) -> _Assessment:
    first = group.first
    kernel = text(first, "ConvolutionKernel")
    thickness = _common_thickness(group)
    failures = _rule_failures(group, rules, thickness)
    derived = _is_derived(texts(first, "ImageType"), rules)
    if derived and not rules.derived_fallback:
        failures.append(
            f"ImageType {_joined(texts(first, 'ImageType'))}: DERIVED reconstructions are not "
            "analysed (derived_fallback is off); expected ORIGINAL acquisitions"
        )
    plan: StackPlan | None = None
    geometry_failures: list[str] = []
    if text(first, "Modality").upper() == rules.modality.upper():
        plan = plan_stack(
            group.headers,
            [i.name for i in group.instances],
            spacing_tolerance=rules.spacing_tolerance,
            max_tilt_deg=rules.max_tilt_deg,
        )
        geometry_failures = list(plan.problems)
        interval = plan.slice_interval_mm
        if plan.ok and interval is not None and interval > rules.max_slice_thickness_mm:
            failures.append(
                f"slice interval {interval:.2f} mm exceeds the maximum of "
                f"{rules.max_slice_thickness_mm:g} mm"
            )
    return _Assessment(
        group=group,
        plan=plan,
        rule_failures=failures,
        geometry_failures=geometry_failures,
        thickness_mm=thickness,
        kernel=kernel,
        kernel_class=rules.kernel_class(kernel),
        derived=derived,
    )


def _is_derived(image_type: Sequence[str], rules: SeriesRules) -> bool:
    """True for a reconstruction made from other images (or an ImageType that does not say)."""
    derived_values = {t.upper() for t in rules.derived_image_types}
    return (
        not image_type
        or image_type[0] != "ORIGINAL"
        or any(t in derived_values for t in image_type)
    )


def _joined(image_type: Sequence[str]) -> str:
    return "\\".join(image_type) or "(missing)"


def _common_thickness(group: SeriesGroup) -> float | None:
    values = [number(h, "SliceThickness") for h in group.headers]
    present = Counter(round(v, 3) for v in values if v is not None and v > 0)
    return present.most_common(1)[0][0] if present else None


def _rule_failures(group: SeriesGroup, rules: SeriesRules, thickness: float | None) -> list[str]:
    first = group.first
    failures: list[str] = []
    modality = text(first, "Modality")
    if modality.upper() != rules.modality.upper():
        # Other modalities are not judged further: their other traits are beside the point.
        return [f"modality {modality or '(missing)'}, expected {rules.modality}"]
    frames = integer(first, "NumberOfFrames")
    if frames is not None and frames > 1:
        failures.append(
            f"multi-frame instances ({frames} frames) are not supported; expected single-frame "
            "CT Image Storage"
        )
    sop_class = text(first, "SOPClassUID")
    if sop_class.startswith(SECONDARY_CAPTURE_SOP_CLASS_PREFIX):
        failures.append(
            f"Secondary Capture images (SOP class {sop_class}) are pictures of images, not "
            "calibrated CT; expected CT Image Storage"
        )
    image_type = texts(first, "ImageType")
    refused = [t for t in image_type if t in {r.upper() for r in rules.refused_image_types}]
    if refused:
        failures.append(
            f"ImageType {_joined(image_type)}: {'/'.join(dict.fromkeys(refused))} images are "
            "not analysed; expected axial CT slices (ORIGINAL, or a DERIVED axial "
            "reconstruction), not a LOCALIZER, MIP, projection or screen capture"
        )
    deviation = axial_deviation_deg(first)
    if deviation is None:
        failures.append("no valid ImageOrientationPatient, expected axial slices")
    elif deviation > rules.max_axial_deviation_deg:
        failures.append(
            f"not axial: the slice normal is {deviation:.1f} degrees from the craniocaudal "
            f"axis, at most {rules.max_axial_deviation_deg:g} degrees allowed"
        )
    if len(group.instances) < rules.min_slices:
        failures.append(
            f"{len(group.instances)} slice(s), fewer than the minimum of {rules.min_slices}"
        )
    if thickness is not None and thickness > rules.max_slice_thickness_mm:
        failures.append(
            f"slice thickness {thickness:g} mm exceeds the maximum of "
            f"{rules.max_slice_thickness_mm:g} mm"
        )
    return failures


def _why_preferred(best: _Assessment, candidates: int) -> list[str]:
    thickness = (
        f"{best.thickness_mm:g} mm slices"
        if best.thickness_mm is not None
        else f"slices every {best.effective_thickness:.2f} mm (no SliceThickness)"
    )
    reasons = [
        "passes every series rule and forms a regular volume",
        f"{KERNEL_WORDS[best.kernel_class]} kernel {best.kernel or '(none)'}, {thickness}, "
        f"{len(best.group.instances)} slices",
    ]
    if candidates > 1:
        reasons.append(
            f"preferred over {candidates - 1} other suitable series (soft-tissue kernel first, "
            "then thinnest slices, then most slices)"
        )
    return reasons


def _derived_warning(best: _Assessment) -> str:
    return (
        f"no ORIGINAL axial CT series qualifies, so {best.describe()} is analysed although "
        f"its ImageType is {_joined(texts(best.group.first, 'ImageType'))}: a reconstruction "
        "made from other images; check that it covers the acquisition at a soft-tissue "
        "kernel without smoothing or slab averaging before relying on attenuation figures"
    )


def _why_original_preferred(other: _Assessment, best: _Assessment) -> str:
    return (
        f"DERIVED reconstruction ({_joined(texts(other.group.first, 'ImageType'))}), analysed "
        f"only when no ORIGINAL series qualifies; {best.describe()} is ORIGINAL"
    )


def _why_not_preferred(other: _Assessment, best: _Assessment) -> str:
    if other.kernel_class != best.kernel_class:
        why = (
            f"{KERNEL_WORDS[best.kernel_class]} kernel {best.kernel} preferred over "
            f"{KERNEL_WORDS[other.kernel_class]} kernel {other.kernel or '(none)'}"
        )
    elif round(other.effective_thickness, 3) != round(best.effective_thickness, 3):
        why = (
            f"thinner slices preferred ({best.effective_thickness:g} mm over "
            f"{other.effective_thickness:g} mm)"
        )
    elif len(other.group.instances) != len(best.group.instances):
        why = (
            f"more slices preferred ({len(best.group.instances)} over {len(other.group.instances)})"
        )
    else:
        why = "equal on kernel, thickness and slices; the lower series number is taken"
    return f"suitable, but {best.describe()} is preferred: {why}"
