"""DICOM Segmentation (SEG) of the label map, and the way back from a SEG to a label map.

The SEG is a BINARY segmentation, the type every common viewer (OHIF, 3D Slicer, PACS) reads.
All seven classes are described as segments and the segment number is the label value, so a
consumer can rely on "segment 3 is skeletal muscle" in every Habitus SEG; a class absent from
the scan is a segment without frames. Frames exist only where a class has voxels in a slice
(empty frames are omitted), and each frame lies on its source slice: same position, same
orientation, with a reference to that slice's SOP instance.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import highdicom as hd
import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian

from habitus import PIPELINE_VERSION, __version__
from habitus.errors import OutputError
from habitus.labels import NUM_LABELS, TISSUE_CLASSES
from habitus.outputs.codes import (
    ALGORITHM_FAMILIES,
    SEGMENT_CODINGS,
    SEGMENT_DESCRIPTIONS,
    display_color,
)
from habitus.segment.base import ModelInfo
from habitus.uids import derived_uid
from habitus.volume import CTVolume

MANUFACTURER = "Habitus"
SEG_SERIES_NUMBER = 9701
SEG_INSTANCE_NUMBER = 1
SEG_CONTENT_LABEL = "BODYCOMPOSITION"

# Identifying attributes a source slice must carry; the fallback fills an empty one.
_SERIES_LEVEL_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")
_FILE_META_FALLBACK = {
    "SOPInstanceUID": "MediaStorageSOPInstanceUID",
    "SOPClassUID": "MediaStorageSOPClassUID",
}


def derived_object_uid(kind: str, source: str, model: ModelInfo) -> str:
    """UID of a derived object or series: the same source, model and pipeline give the same UID,
    so a retried analysis writes the same objects (DESIGN.md §3). ``source`` is
    :func:`source_identity` of the analysed volume."""
    return derived_uid(kind, source, model.model_id, model.version, PIPELINE_VERSION)


def source_identity(volume: CTVolume) -> str:
    """The source series UID and a digest of its SOP Instance UIDs.

    Identical slices sent again give the same identity, hence the same SEG and SR; a series
    whose slices changed (added, replaced, removed) gives new objects, so a PACS that keeps
    the first copy of an instance does not keep a stale result.
    """
    if volume.source is None:
        return ""
    instances = sorted(_instance_uid(header) for header in volume.source.headers)
    digest = hashlib.sha256("\n".join(instances).encode()).hexdigest()[:32]
    return f"{volume.source.series_instance_uid}/{digest}"


def _instance_uid(header: Dataset) -> str:
    uid = str(header.get("SOPInstanceUID", "") or "")
    meta = getattr(header, "file_meta", None)
    return uid or str(getattr(meta, "MediaStorageSOPInstanceUID", "") or "")


def source_headers(volume: CTVolume) -> list[Dataset]:
    """The source slice datasets in volume order, with their identifying UIDs filled in.

    Some archives export slices whose Study, Series or SOP Instance UID is empty while the real
    value is known elsewhere (the series record, the file meta header). Such a slice gets a copy
    with the value filled; the caller's datasets are never modified.
    """
    source = volume.source
    if source is None:
        raise OutputError(
            "DICOM-SEG and SR need the DICOM series the volume came from, "
            "but this volume has no source series (NIfTI input)"
        )
    if len(source.headers) != volume.shape[0]:
        raise OutputError(
            f"expected one source slice per volume slice ({volume.shape[0]}), "
            f"found {len(source.headers)} source datasets"
        )
    series_level = {
        "StudyInstanceUID": source.study_instance_uid,
        "SeriesInstanceUID": source.series_instance_uid,
        "FrameOfReferenceUID": source.frame_of_reference_uid,
    }
    return [_with_identifiers(header, k, series_level) for k, header in enumerate(source.headers)]


def _with_identifiers(header: Dataset, k: int, series_level: dict[str, str]) -> Dataset:
    fills: dict[str, str] = {}
    for keyword in _SERIES_LEVEL_UIDS:
        if not header.get(keyword):
            fills[keyword] = series_level[keyword]
    file_meta = getattr(header, "file_meta", None)
    for keyword, meta_keyword in _FILE_META_FALLBACK.items():
        if not header.get(keyword) and file_meta is not None and file_meta.get(meta_keyword):
            fills[keyword] = str(file_meta[meta_keyword].value)
    required = (*_SERIES_LEVEL_UIDS, *_FILE_META_FALLBACK)
    missing = [kw for kw in required if not (fills.get(kw) or header.get(kw))]
    if missing:
        raise OutputError(
            f"source slice {k} has no {', '.join(missing)}: expected every slice to carry "
            "its identifying UIDs (in the dataset or its file meta header)"
        )
    if not fills:
        return header
    filled = Dataset()
    filled.update(header)
    for keyword, value in fills.items():
        filled.add_new(keyword, "UI", value)  # a new element: the original keeps its own
    if file_meta is not None:
        filled.file_meta = file_meta
    return filled


def check_label_map(labels: NDArray[np.integer], volume: CTVolume) -> NDArray[np.uint8]:
    """The label map as uint8 after checking its shape and values against the volume."""
    if labels.shape != volume.shape:
        raise OutputError(
            f"expected a label map of the volume's shape {volume.shape}, found {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise OutputError(f"expected an integer label map, found dtype {labels.dtype}")
    top = int(labels.max()) if labels.size else 0
    low = int(labels.min()) if labels.size else 0
    if low < 0 or top >= NUM_LABELS:
        raise OutputError(
            f"expected label values 0 to {NUM_LABELS - 1}, found values from {low} to {top}"
        )
    return labels.astype(np.uint8, copy=False)


def segment_descriptions(model: ModelInfo) -> list[hd.seg.SegmentDescription]:
    """One description per class, segment number = label value, in label order."""
    algorithm = hd.AlgorithmIdentificationSequence(
        name=model.model_id,
        family=ALGORITHM_FAMILIES[model.kind],
        version=model.version,
        source=MANUFACTURER,
    )
    descriptions = []
    for tissue in TISSUE_CLASSES:
        coding = SEGMENT_CODINGS[tissue]
        description = hd.seg.SegmentDescription(
            segment_number=int(tissue),
            segment_label=tissue.display_name,
            segmented_property_category=coding.category,
            segmented_property_type=coding.property_type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            anatomic_regions=[coding.anatomic_region] if coding.anatomic_region else None,
            display_color=display_color(tissue),
        )
        description.SegmentDescription = SEGMENT_DESCRIPTIONS[tissue]
        descriptions.append(description)
    return descriptions


def build_segmentation(
    labels: NDArray[np.integer],
    volume: CTVolume,
    model: ModelInfo,
    *,
    content_creator: str | None = None,
    created: datetime | None = None,
    transfer_syntax_uid: str = ExplicitVRLittleEndian,
) -> hd.seg.Segmentation:
    """The DICOM-SEG of ``labels`` (values of habitus.labels.Tissue) on ``volume``'s source series.

    ``created`` dates the object (content and instance creation); pass the analysis time to get
    byte-identical objects from a repeated run. Raises OutputError for NIfTI input, for a label
    map that does not fit the volume, and for a label map without any foreground voxel (a SEG
    needs at least one segmented frame).
    """
    headers = source_headers(volume)
    label_map = check_label_map(labels, volume)
    rows, columns = int(headers[0].Rows), int(headers[0].Columns)
    if label_map.shape[1:] != (rows, columns):
        raise OutputError(
            f"expected slices of the source's {rows} x {columns} pixels, "
            f"found {label_map.shape[1]} x {label_map.shape[2]}"
        )
    if not label_map.any():
        raise OutputError(
            "the label map has no foreground voxel: there is nothing to store in a DICOM-SEG"
        )
    when, utc_offset = in_source_time_zone(created or datetime.now(), headers[0])
    source_series = source_identity(volume)
    try:
        seg = _segmentation(
            label_map, headers, model, source_series, content_creator, when, transfer_syntax_uid
        )
    except (ValueError, AttributeError) as exc:
        # highdicom checks the source datasets and the IOD; say which object failed and why
        raise OutputError(
            f"the DICOM-SEG could not be built from the source series: {exc}"
        ) from exc
    stamp_creation_time(seg, when, utc_offset)
    _fix_dimension_organization(
        seg, derived_object_uid("seg-dimension-organization", source_series, model)
    )
    return seg


def _segmentation(
    label_map: NDArray[np.uint8],
    headers: list[Dataset],
    model: ModelInfo,
    source_series: str,
    content_creator: str | None,
    when: datetime,
    transfer_syntax_uid: str,
) -> hd.seg.Segmentation:
    return hd.seg.Segmentation(
        source_images=headers,
        pixel_array=label_map,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segment_descriptions(model),
        series_instance_uid=derived_object_uid("seg-series", source_series, model),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=derived_object_uid("seg-instance", source_series, model),
        instance_number=SEG_INSTANCE_NUMBER,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=model.model_id,
        software_versions=f"habitus {__version__}",
        device_serial_number=_device_serial_number(model),
        content_label=SEG_CONTENT_LABEL,
        content_description=f"Body composition, {model.model_id} {model.version}"[:64],
        content_creator_name=content_creator,
        transfer_syntax_uid=transfer_syntax_uid,
        omit_empty_frames=True,
        series_description=f"Body composition SEG ({model.model_id})"[:64],
        content_date=when.date(),
        content_time=when.time(),
        series_date=when.date(),
        series_time=when.time(),
        specific_character_set=character_set(headers[0]),
    )


def character_set(header: Dataset) -> str | list[str] | None:
    """The source's Specific Character Set for a derived object; None (the default repertoire)
    where the source leaves it empty, as some scanners write an empty value."""
    value = header.get("SpecificCharacterSet")
    if not value:
        return None
    return str(value) if isinstance(value, str) else [str(v) for v in value]


_UTC_OFFSET = re.compile(r"^([+-])(\d{2})(\d{2})$")


def in_source_time_zone(when: datetime, source: Dataset) -> tuple[datetime, str | None]:
    """``when`` as a derived object's dates and times state it, and the offset to record.

    DICOM dates and times without Timezone Offset From UTC (0008,0201) are local time, and
    the offset, where present, holds for every date and time of the object, the study's
    copied from the source included. So: in the source's offset, recorded again, where the
    source states one; else in this machine's local time (the TZ of the service) and none.
    A naive ``when`` is taken as local time.
    """
    match = _UTC_OFFSET.match(str(source.get("TimezoneOffsetFromUTC", "")).strip())
    if match is None:
        return when.astimezone(), None
    sign = -1 if match.group(1) == "-" else 1
    offset = timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
    return when.astimezone(timezone(sign * offset)), match.group(0)


def stamp_creation_time(dataset: Dataset, when: datetime, utc_offset: str | None) -> None:
    """Date the object by ``when`` wherever highdicom wrote "now" (instance creation, its own
    contribution as processing equipment), so that the bytes depend only on the inputs; with
    ``utc_offset`` (from ``in_source_time_zone``), record the offset those times are in."""
    if utc_offset is not None:
        dataset.TimezoneOffsetFromUTC = utc_offset
    dataset.InstanceCreationDate = when.strftime("%Y%m%d")
    dataset.InstanceCreationTime = when.strftime("%H%M%S.%f")
    for item in dataset.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = when.strftime("%Y%m%d%H%M%S.%f")


def _fix_dimension_organization(seg: hd.seg.Segmentation, uid: str) -> None:
    """Replace the random Dimension Organization UID highdicom draws by a derived one."""
    for item in (*seg.DimensionOrganizationSequence, *seg.DimensionIndexSequence):
        item.DimensionOrganizationUID = uid


def _device_serial_number(model: ModelInfo) -> str:
    # A software device has no serial number; the model checksum identifies the exact weights.
    return (model.sha256 or f"{model.model_id}-{model.version}")[:64]


def read_label_map(seg: Dataset | Path | str, volume: CTVolume) -> NDArray[np.uint8]:
    """The label map a Habitus SEG encodes, on ``volume``'s grid (slice k = source slice k)."""
    segmentation = _as_segmentation(seg)
    headers = source_headers(volume)
    series_uid = headers[0].SeriesInstanceUID
    referenced = {item.SeriesInstanceUID for item in segmentation.ReferencedSeriesSequence}
    if series_uid not in referenced:
        raise OutputError(
            f"expected a SEG of series {series_uid}, found one of {', '.join(sorted(referenced))}"
        )
    numbers = [int(item.SegmentNumber) for item in segmentation.SegmentSequence]
    if any(n < 1 or n >= NUM_LABELS for n in numbers):
        raise OutputError(
            f"expected segment numbers 1 to {NUM_LABELS - 1} (label values), found {numbers}"
        )
    pixels = segmentation.get_pixels_by_source_instance(
        source_sop_instance_uids=[str(h.SOPInstanceUID) for h in headers],
        combine_segments=True,
        relabel=False,
    )
    return np.asarray(pixels, dtype=np.uint8)


def _as_segmentation(seg: Dataset | Path | str) -> hd.seg.Segmentation:
    if isinstance(seg, hd.seg.Segmentation):
        return seg
    if isinstance(seg, Dataset):
        return hd.seg.Segmentation.from_dataset(seg, copy=True)
    try:
        return hd.seg.segread(str(seg))
    except (OSError, ValueError, AttributeError, InvalidDicomError) as exc:
        raise OutputError(f"expected a DICOM-SEG file at {seg}, could not read it: {exc}") from exc
