"""The PET uptake per tissue as TID 1500 measurement groups of the Habitus SR.

One TID 1501 group per measured region ("PET uptake: waist", ...). Each class measured there
gives SUVbw (DCM 126401) with the derivations Mean, Maximum and Peak Value Within ROI, and,
with a lean body mass, SUVlbm(Janma) (DCM 126405) Mean; its finding site is the class's tissue
(the SEG's coding). Every measurement references the PET images at the region's first and
last PET slices, so the SR points at the PET series it was measured on; those PET instances
are added to the SR's evidence (``evidence``).
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from habitus.labels import Tissue
from habitus.outputs.codes import MEAN, SEGMENT_CODINGS
from habitus.outputs.sr import MeasurementGroup, scan_measurement_group
from habitus.pet.schema import SUV_UNIT, PetSection, RegionUptake, TissueUptake
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume

SUV_BW = hd.sr.CodedConcept("126401", "DCM", "SUVbw")
SUV_LBM_JANMA = hd.sr.CodedConcept("126405", "DCM", "SUVlbm(Janma)")
SUV_BW_UNIT = hd.sr.CodedConcept(SUV_UNIT, "UCUM", "Standardized Uptake Value body weight")
SUL_JANMA_UNIT = hd.sr.CodedConcept(
    "{SUVlbm(Janma)}g/ml", "UCUM", "Standardized Uptake Value lean body mass (Janmahasatian)"
)
MAXIMUM = hd.sr.CodedConcept.from_code(codes.SCT.Maximum)
PEAK = hd.sr.CodedConcept.from_code(codes.DCM.PeakValueWithinROI)
REGION_LABELS = {
    "scan": "PET uptake: whole scan",
    "torso": "PET uptake: torso",
    "waist": "PET uptake: waist (last rib to iliac crest)",
    "l3": "PET uptake: third lumbar vertebra",
}


def pet_sr_groups(
    pet: PetSection, headers: Sequence[Dataset], volume: CTVolume, model: ModelInfo
) -> list[MeasurementGroup]:
    """One group per measured region; nothing when the PET was not measured."""
    if not pet.analysed or not headers:
        return []
    groups: list[MeasurementGroup] = []
    for region in pet.regions:
        if not region.available or region.pet_slices is None:
            continue
        references = _references(region, headers)
        measurements = [
            item
            for row in region.classes
            if row.voxels > 0
            for item in _class_measurements(row, references)
        ]
        if measurements:
            groups.append(
                scan_measurement_group(
                    REGION_LABELS[region.name], volume, model, measurements=measurements
                )
            )
    return groups


def evidence(pet: PetSection, headers: Sequence[Dataset]) -> list[Dataset]:
    """The PET instances the groups reference: the end slices of each measured region."""
    slices = sorted(
        {k for r in pet.regions if r.available and r.pet_slices for k in set(r.pet_slices)}
    )
    return [headers[k] for k in slices] if pet.analysed else []


def _references(
    region: RegionUptake, headers: Sequence[Dataset]
) -> list[hd.sr.SourceImageForMeasurement]:
    assert region.pet_slices is not None
    return [
        hd.sr.SourceImageForMeasurement.from_source_image(headers[k])
        for k in sorted(set(region.pet_slices))
    ]


def _class_measurements(
    row: TissueUptake, references: list[hd.sr.SourceImageForMeasurement]
) -> list[hd.sr.Measurement]:
    coding = SEGMENT_CODINGS[Tissue(row.label)]
    # the tissue, narrowed by its region where the tissue alone is too broad (fat)
    site = [hd.sr.FindingSite(coding.property_type)]
    if coding.anatomic_region is not None:
        site.append(hd.sr.FindingSite(coding.anatomic_region))
    values = [
        (SUV_BW, row.suv_mean, MEAN, SUV_BW_UNIT),
        (SUV_BW, row.suv_max, MAXIMUM, SUV_BW_UNIT),
        (SUV_BW, row.suv_peak, PEAK, SUV_BW_UNIT),
        (SUV_LBM_JANMA, row.sul_mean, MEAN, SUL_JANMA_UNIT),
    ]
    return [
        hd.sr.Measurement(
            name=name,
            value=value,
            unit=unit,
            derivation=derivation,
            finding_sites=site,
            referenced_images=references,
        )
        for name, value, derivation, unit in values
        if value is not None
    ]
