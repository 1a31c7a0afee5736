"""The body-composition result drawn into the preview and written into the DICOM SR.

Each region (waist, torso, L3) becomes a TID 1501 measurement group whose measurements
reference the source slices they were taken from: the waist's first and last slices (the
last rib and the iliac crest), the torso's limits, the L3 slice. The sarcopenia and fat flags
become qualitative evaluations of the waist group. The contrast phase is a group of its own:
the phase as a qualitative evaluation, and the median HU of each structure it was read from
(aorta, liver) with its finding site and the slices that bound where it was measured.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from habitus.metrics.measurements import named_measurements
from habitus.metrics.schema import BodyComposition, ContrastAssessment, Flag, NamedMeasurement
from habitus.outputs.codes import (
    AORTA,
    ATTENUATION_COEFFICIENT,
    CM2_PER_KG,
    CM2_PER_M2,
    CM3_PER_KG,
    CM3_PER_M2,
    CONTRAST_PHASE,
    CONTRAST_PHASES,
    CUBIC_CENTIMETER,
    HOUNSFIELD_UNIT,
    LIVER,
    MEDIAN,
    NO_UNITS,
    SQUARE_CENTIMETER,
    habitus_concept,
)
from habitus.outputs.preview import Band, Line, Mark, PreviewOptions
from habitus.outputs.seg import source_headers
from habitus.outputs.sr import MeasurementGroup, qualitative_evaluation, scan_measurement_group
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume

UNITS: dict[str, hd.sr.CodedConcept] = {
    "cm": hd.sr.CodedConcept("cm", "UCUM", "centimeter"),
    "cm2": SQUARE_CENTIMETER,
    "cm3": CUBIC_CENTIMETER,
    "cm2/m2": CM2_PER_M2,
    "cm2/kg": CM2_PER_KG,
    "cm3/m2": CM3_PER_M2,
    "cm3/kg": CM3_PER_KG,
    "[hnsf'U]": HOUNSFIELD_UNIT,
    "1": NO_UNITS,
}

TORSO_COLOR = (90, 160, 255)

GROUP_LABELS = {
    "waist": "Waist (last rib to iliac crest)",
    "torso": "Torso",
    "l3": "Third lumbar vertebra, middle slice",
}
CONTRAST_GROUP_LABEL = "Intravenous contrast phase"
SITES = {"aorta": AORTA, "liver": LIVER}


def preview_options(body: BodyComposition) -> PreviewOptions:
    """Waist band, torso band and L3 line on the coronal view; L3 and the waist in the axials."""
    regions = body.regions
    marks: list[Mark] = []
    axial: list[int] = []
    if regions.torso is not None:
        marks.append(
            Band(regions.torso.first_slice, regions.torso.last_slice, "torso", (90, 160, 255))
        )
    if regions.waist is not None:
        marks.append(Band(regions.waist.first_slice, regions.waist.last_slice, "waist"))
        axial += [regions.waist.first_slice, regions.waist.last_slice]
    if regions.l3_slice is not None:
        marks.append(Line(regions.l3_slice, "L3"))
        axial.append(regions.l3_slice)
    return PreviewOptions(
        axial_slices=sorted(set(axial)) or None, marks=marks, text_lines=body.summary_lines
    )


def sr_groups(body: BodyComposition, volume: CTVolume, model: ModelInfo) -> list[MeasurementGroup]:
    """One measurement group per measured region, flags as evaluations of the waist group.

    The flags are computed from waist indices, so a known flag always has a waist group.
    """
    by_group: dict[str, list[NamedMeasurement]] = defaultdict(list)
    for item in named_measurements(body):
        by_group[item.group].append(item)
    flags = [_flag_evaluation(f) for f in (body.flags.low_smi, body.flags.high_bfi)]
    headers = source_headers(volume) if volume.source is not None else []
    groups: list[MeasurementGroup] = [
        scan_measurement_group(
            GROUP_LABELS[group],
            volume,
            model,
            measurements=[_measurement(item, headers) for item in items],
            evaluations=[f for f in flags if f is not None] if group == "waist" else (),
        )
        for group, items in by_group.items()
    ]
    if body.contrast is not None:
        groups.append(_contrast_group(body.contrast, headers, volume, model))
    return groups


def _contrast_group(
    contrast: ContrastAssessment, headers: Sequence[Dataset], volume: CTVolume, model: ModelInfo
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """The phase, and the median attenuation of each structure found, at its site."""
    values = []
    for item in contrast.evidence:
        if item.median_hu is None or item.slices is None:
            continue
        bounds = sorted(set(item.slices))
        values.append(
            hd.sr.Measurement(
                name=ATTENUATION_COEFFICIENT,
                value=item.median_hu,
                unit=HOUNSFIELD_UNIT,
                derivation=MEDIAN,
                finding_sites=[hd.sr.FindingSite(SITES[item.structure])],
                referenced_images=[
                    hd.sr.SourceImageForMeasurement.from_source_image(headers[k]) for k in bounds
                ]
                if headers
                else None,
            )
        )
    phase = qualitative_evaluation(CONTRAST_PHASE, CONTRAST_PHASES[str(contrast.phase)])
    return scan_measurement_group(
        CONTRAST_GROUP_LABEL, volume, model, measurements=values, evaluations=[phase]
    )


def _measurement(item: NamedMeasurement, headers: Sequence[Dataset]) -> hd.sr.Measurement:
    """The measurement, referencing the source slices that bound the range it covers."""
    bounds = sorted({item.slices[0], item.slices[1]})
    references = [hd.sr.SourceImageForMeasurement.from_source_image(headers[k]) for k in bounds]
    return hd.sr.Measurement(
        name=habitus_concept(item.key.upper(), item.label),
        value=item.value,
        unit=UNITS[item.unit],
        referenced_images=references or None,
    )


def _flag_evaluation(flag: Flag) -> hd.sr.QualitativeEvaluation | None:
    if flag.value is None:
        return None
    name = {
        "low_smi": habitus_concept("LOWSMI", "Low skeletal muscle index"),
        "high_bfi": habitus_concept("HIGHBFI", "High body fat index"),
    }[flag.name]
    return qualitative_evaluation(name, codes.SCT.Yes if flag.value else codes.SCT.No)
