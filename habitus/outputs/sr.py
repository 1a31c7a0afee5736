"""DICOM Comprehensive 3D SR: a TID 1500 Measurement Report of the body-composition analysis.

The observer is the Habitus device (model id and version). Each class present in the scan has
a TID 1411 volumetric measurement group that points at its SEG segment and carries the class
volume (cm3) and mean attenuation (HU). Further groups (waist areas, indices, L3 areas, flags as
qualitative evaluations) are built by the analytics with :func:`measurement`,
:func:`qualitative_evaluation` and :func:`scan_measurement_group` and passed to
:func:`build_sr` as ``extra_groups``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import datetime

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sr.coding import Code

from habitus import PIPELINE_VERSION, __version__
from habitus.errors import OutputError
from habitus.labels import Tissue
from habitus.outputs.codes import (
    ATTENUATION_COEFFICIENT,
    CUBIC_CENTIMETER,
    HABITUS_CODING_SCHEME,
    HABITUS_SCHEME,
    HOUNSFIELD_UNIT,
    MEAN,
    OBSERVER_DEVICE,
    PROCEDURE_CT,
    SEGMENT_CODINGS,
    VOLUME,
)
from habitus.outputs.report import ClassMeasurement, Report
from habitus.outputs.seg import (
    MANUFACTURER,
    character_set,
    derived_object_uid,
    in_source_time_zone,
    source_headers,
    source_identity,
    stamp_creation_time,
)
from habitus.segment.base import ModelInfo
from habitus.uids import derived_uid
from habitus.volume import CTVolume

SR_SERIES_NUMBER = 9702
SR_INSTANCE_NUMBER = 1

MeasurementGroup = (
    hd.sr.MeasurementsAndQualitativeEvaluations
    | hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
    | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
)
"""Any measurement group TID 1500 accepts: scan-level (TID 1501) or ROI-based (TID 1410/1411)."""

Concept = hd.sr.CodedConcept | Code


def measurement(
    name: Concept, value: float, unit: Concept, *, derivation: Concept | None = None
) -> hd.sr.Measurement:
    """A numeric measurement (TID 300), e.g. measurement(VOLUME, 812.4, CUBIC_CENTIMETER)."""
    if not math.isfinite(value):
        raise OutputError(f"expected a finite value for measurement '{name.meaning}', got {value}")
    return hd.sr.Measurement(name=name, value=float(value), unit=unit, derivation=derivation)


def qualitative_evaluation(name: Concept, value: Concept) -> hd.sr.QualitativeEvaluation:
    """A coded finding, e.g. (habitus_concept("LOWSMI", "Low SMI"), codes.SCT.Yes)."""
    return hd.sr.QualitativeEvaluation(name=name, value=value)


def tracking_identifier(label: str, volume: CTVolume, model: ModelInfo) -> hd.sr.TrackingIdentifier:
    """A group's tracking identifier: ``label`` for people, a UID stable across reruns."""
    uid = derived_object_uid(f"tracking:{label}", source_identity(volume), model)
    return hd.sr.TrackingIdentifier(uid=uid, identifier=label)


def algorithm_identification(model: ModelInfo) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(name=model.model_id, version=model.version)


def scan_measurement_group(
    label: str,
    volume: CTVolume,
    model: ModelInfo,
    *,
    measurements: Sequence[hd.sr.Measurement] = (),
    evaluations: Sequence[hd.sr.QualitativeEvaluation] = (),
    finding_type: Concept | None = None,
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """A TID 1501 group of measurements about the scan as a whole or a range of it (waist
    averages, indices, flags), for ``build_sr(extra_groups=...)``."""
    if not measurements and not evaluations:
        raise OutputError(f"measurement group '{label}' has neither measurements nor evaluations")
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking_identifier(label, volume, model),
        finding_type=finding_type,
        algorithm_id=algorithm_identification(model),
        measurements=list(measurements) or None,
        qualitative_evaluations=list(evaluations) or None,
    )


def class_measurement_groups(
    report: Report, seg: hd.seg.Segmentation, volume: CTVolume, model: ModelInfo
) -> list[hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations]:
    """One TID 1411 group per class present (voxels > 0), referencing its SEG segment."""
    described = {int(item.SegmentNumber) for item in seg.SegmentSequence}
    series_uid = volume.source.series_instance_uid if volume.source else ""
    groups = []
    for row in report.classes:
        if row.voxels == 0:
            continue
        if row.label not in described:
            raise OutputError(
                f"class {row.name} (label {row.label}) has {row.voxels} voxels but the SEG "
                f"describes only segments {sorted(described)}"
            )
        groups.append(_class_group(row, seg, series_uid, volume, model))
    return groups


def _class_group(
    row: ClassMeasurement,
    seg: hd.seg.Segmentation,
    series_uid: str,
    volume: CTVolume,
    model: ModelInfo,
) -> hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    coding = SEGMENT_CODINGS[Tissue(row.label)]
    values = [measurement(VOLUME, row.volume_cm3, CUBIC_CENTIMETER)]
    if row.mean_hu is not None:
        values.append(
            measurement(ATTENUATION_COEFFICIENT, row.mean_hu, HOUNSFIELD_UNIT, derivation=MEAN)
        )
    sites = [hd.sr.FindingSite(coding.anatomic_region)] if coding.anatomic_region else None
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking_identifier(row.name, volume, model),
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID,
            sop_instance_uid=seg.SOPInstanceUID,
            segment_number=row.label,
            source_series=hd.sr.SourceSeriesForSegmentation(series_uid),
        ),
        finding_category=coding.category,
        finding_type=coding.property_type,
        finding_sites=sites,
        algorithm_id=algorithm_identification(model),
        measurements=values,
    )


def build_sr(
    report: Report,
    seg: hd.seg.Segmentation,
    volume: CTVolume,
    model: ModelInfo,
    *,
    extra_groups: Sequence[MeasurementGroup] = (),
    extra_evidence: Sequence[Dataset] = (),
    created: datetime | None = None,
) -> hd.sr.Comprehensive3DSR:
    """The Measurement Report SR of ``report``; evidence is the SEG and the source series,
    and ``extra_evidence``: other instances the groups reference (the PET slices measured).

    UIDs derive from the source series, the model and the pipeline version; the content date is
    ``created`` or else the report's creation time, so a rerun writes the same document.
    """
    headers = source_headers(volume)
    series_uid = str(headers[0].SeriesInstanceUID)
    referenced = {item.SeriesInstanceUID for item in seg.ReferencedSeriesSequence}
    if series_uid not in referenced:
        raise OutputError(
            f"expected the SEG of series {series_uid}, "
            f"found a SEG of {', '.join(sorted(referenced))}"
        )
    content = hd.sr.MeasurementReport(
        observation_context=_observation_context(model),
        procedure_reported=PROCEDURE_CT,
        imaging_measurements=[
            *class_measurement_groups(report, seg, volume, model),
            *extra_groups,
        ],
    )
    when, utc_offset = in_source_time_zone(created or report.created, headers[0])
    try:
        sr = _document(
            content, headers, [*extra_evidence, seg], source_identity(volume), model, when
        )
    except (ValueError, AttributeError) as exc:
        raise OutputError(f"the DICOM SR could not be built: {exc}") from exc
    stamp_creation_time(sr, when, utc_offset)
    return sr


def _document(
    content: hd.sr.MeasurementReport,
    headers: list[Dataset],
    other_evidence: Sequence[Dataset],
    source: str,
    model: ModelInfo,
    when: datetime,
) -> hd.sr.Comprehensive3DSR:
    return hd.sr.Comprehensive3DSR(
        evidence=[*headers, *other_evidence],
        content=content[0],
        series_instance_uid=derived_object_uid("sr-series", source, model),
        series_number=SR_SERIES_NUMBER,
        # The instance UID also carries a digest of what the SR says: analyses that differ in
        # anything that shapes the measurements (height, weight, sex given, options) never
        # share a UID, and the same inputs still give the same UID.
        sop_instance_uid=derived_object_uid(
            "sr-instance", f"{source}\x1f{content_digest(content[0])}", model
        ),
        instance_number=SR_INSTANCE_NUMBER,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,  # nobody has verified the automated result
        is_verified=False,
        series_description=f"Body composition SR ({model.model_id})"[:64],
        manufacturer_model_name=model.model_id,
        software_versions=f"habitus {__version__}",
        coding_schemes=[HABITUS_CODING_SCHEME] if _uses_scheme(content, HABITUS_SCHEME) else None,
        content_date=when.date(),
        content_time=when.time(),
        specific_character_set=character_set(headers[0]),
    )


def content_digest(content: Dataset) -> str:
    """SHA-256 of the SR's content tree as encoded (implicit VR little endian)."""
    encoded = DicomBytesIO()
    encoded.is_little_endian = True
    encoded.is_implicit_VR = True
    write_dataset(encoded, content)
    return hashlib.sha256(encoded.getvalue()).hexdigest()


def _observation_context(model: ModelInfo) -> hd.sr.ObservationContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=derived_uid("device", MANUFACTURER, model.model_id, model.version, PIPELINE_VERSION),
        name=MANUFACTURER,
        manufacturer_name=MANUFACTURER,
        model_name=f"{model.model_id} {model.version}"[:64],
    )
    return hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=OBSERVER_DEVICE, observer_identifying_attributes=device
        )
    )


def _uses_scheme(items: Sequence[Dataset], designator: str) -> bool:
    """Whether any code in the content tree comes from ``designator``, which the SR must then
    identify in its Coding Scheme Identification Sequence."""
    for item in items:
        for element in item:
            if element.VR != "SQ":
                if element.keyword == "CodingSchemeDesignator" and element.value == designator:
                    return True
            elif _uses_scheme(element.value, designator):
                return True
    return False
