"""Short human-readable lines of the body-composition result, for the command line.

Slices are named as a viewer shows them: by InstanceNumber (DICOM input) and z, never by the
internal slice index k.
"""

from __future__ import annotations

from habitus.metrics.schema import (
    ContrastAssessment,
    Flag,
    L3Metrics,
    Quality,
    SliceRange,
    SourceInstance,
    TorsoMetrics,
    WaistMetrics,
)


def summary_lines(
    waist: WaistMetrics,
    l3: L3Metrics,
    torso: TorsoMetrics,
    flags: list[Flag],
    quality: Quality,
    contrast: ContrastAssessment | None = None,
) -> list[str]:
    lines = [_waist(waist), _l3(l3), _torso(torso)]
    lines += [_flag(f, waist) for f in flags]
    if contrast is not None:
        lines.append(_contrast(contrast))
    if quality.review_required:
        # a reason already given by a line above (waist or L3 not measured) is not repeated
        shown = "\n".join(lines)
        others = [r for r in quality.review_reasons if r not in shown]
        lines.append("review required: " + ("; ".join(others) or "see above"))
    return lines


def _value(value: float | None, unit: str, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def _span(r: SliceRange) -> str:
    """Where a range lies: its end instances by InstanceNumber with their z, else z alone."""
    ends = [r.first_instance, r.last_instance]
    numbered = [i for i in ends if i is not None and i.instance_number is not None]
    if len(numbered) == 2:
        a, b = sorted(numbered, key=lambda i: i.instance_number or 0)
        return (
            f"instances {a.instance_number}-{b.instance_number}, z {a.z_mm:.1f} to {b.z_mm:.1f} mm"
        )
    return f"z {r.z_mm[0]:.1f} to {r.z_mm[1]:.1f} mm"


def _at(instance: SourceInstance | None, z_mm: float | None) -> str:
    """Where a slice lies: its InstanceNumber and z, else z alone."""
    z = "z n/a" if z_mm is None else f"z {z_mm:.1f} mm"
    if instance is None or instance.instance_number is None:
        return z
    return f"instance {instance.instance_number}, {z}"


def _waist(w: WaistMetrics) -> str:
    if not w.available:
        return f"waist: not measured ({w.reason})"
    assert w.range is not None
    # SMI and BFI at the precision the report gives them and the flags are decided on
    return (
        f"waist ({_span(w.range)}, "
        f"{_value(w.length_cm, 'cm')}): average SMA {_value(w.average_sma_cm2, 'cm²')}, "
        f"average BFA {_value(w.average_bfa_cm2, 'cm²')}, "
        f"SMI {_value(w.smi_cm2_m2, 'cm²/m²', 2)}, BFI {_value(w.bfi_cm2_kg, 'cm²/kg', 3)}"
    )


def _l3(m: L3Metrics) -> str:
    if not m.available:
        return f"L3: not measured ({m.reason})"
    return (
        f"L3 ({_at(m.instance, m.z_mm)}): SMA {_value(m.sma_cm2, 'cm²')}, VAT "
        f"{_value(m.vat_cm2, 'cm²')}, SAT {_value(m.sat_cm2, 'cm²')}, muscle "
        f"{_value(m.muscle_mean_hu, 'HU', 0)}"
    )


def _torso(t: TorsoMetrics) -> str:
    if t.range is None:
        return "torso: not measured"
    coverage = "complete" if t.complete else "partly scanned"
    return (
        f"torso ({_span(t.range)}, {coverage}): muscle "
        f"{_value(t.muscle_cm3, 'cm³', 0)}, fat {_value(t.fat_cm3, 'cm³', 0)}"
    )


def _contrast(c: ContrastAssessment) -> str:
    """The phase and the figures it was read from: "contrast: arterial (aorta 320 HU, ...)"."""
    found = [
        f"{e.structure} {e.median_hu:.0f} HU" + (f" at {e.levels}" if e.levels else "")
        for e in c.evidence
        if e.median_hu is not None
    ]
    figures = ", ".join(found) or "no aorta or liver found"
    return f"contrast: {str(c.phase).replace('_', ' ')} ({figures})"


def _flag(f: Flag, waist: WaistMetrics) -> str:
    label = {"low_smi": "low SMI", "high_bfi": "high BFI"}[f.name]
    if f.value is None and f.measured is None and not waist.available:
        return f"{label}: unknown (waist not measured)"  # the waist line says why
    if f.value is None:
        return f"{label}: unknown ({f.reason})"
    rule = f"{f.comparison} {f.cutoff} {f.unit} for sex {f.sex}"
    if f.value:
        return f"{label}: yes ({f.measured} {rule})"
    # "no (4.21 > 4.7 ...)" would claim what is false: state the rule that was not met
    return f"{label}: no ({f.measured}; {label.split()[0]} if {rule})"
