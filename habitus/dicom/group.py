"""Group instances into series, filling identifiers the datasets lack.

SeriesInstanceUID is used when the dataset has one. Without it, instances are grouped by what
a series shares: frame of reference, orientation, pixel spacing, image size, series number,
description, image type, kernel and slice thickness (acquisition number is left out on
purpose: step-and-shoot scans give every rotation its own), and the series gets a UID derived
from those values. SOP Instance and SOP Class UIDs fall back to the file meta header; a missing
Study Instance UID is derived from the study attributes that are there. Every filled value is
written into the header datasets, so outputs can reference them, and is reported as a warning.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from habitus.dicom.attributes import floats, meta_text, text, texts
from habitus.dicom.read import Instance
from habitus.uids import derived_uid

STUDY_KEYWORDS: tuple[str, ...] = (
    "PatientID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "FrameOfReferenceUID",
)


@dataclass
class SeriesGroup:
    """The instances of one series, duplicates of the same SOP instance removed."""

    series_instance_uid: str
    study_instance_uid: str
    instances: list[Instance] = field(default_factory=list)

    @property
    def headers(self) -> list[Dataset]:
        return [instance.header for instance in self.instances]

    @property
    def first(self) -> Dataset:
        return self.instances[0].header


@dataclass
class Grouping:
    series: list[SeriesGroup]
    warnings: list[str]


def group_series(instances: list[Instance]) -> Grouping:
    """Fill missing UIDs and group instances by series, in order of series number."""
    warnings: list[str] = []
    _fill_sop_uids_from_meta(instances, warnings)
    _fill_study_uids(instances, warnings)
    _fill_series_uids(instances, warnings)
    groups: dict[str, SeriesGroup] = {}
    for instance in instances:
        uid = text(instance.header, "SeriesInstanceUID")
        if uid not in groups:
            groups[uid] = SeriesGroup(uid, text(instance.header, "StudyInstanceUID"))
        groups[uid].instances.append(instance)
    for group in groups.values():
        _fill_missing_sop_instance_uids(group, warnings)
        _drop_repeated_instances(group, warnings)
    ordered = sorted(groups.values(), key=_series_order)
    return Grouping(ordered, warnings)


def _series_order(group: SeriesGroup) -> tuple[float, str]:
    number = floats(group.first, "SeriesNumber")
    return (number[0] if number else float("inf"), group.series_instance_uid)


def _fill_sop_uids_from_meta(instances: list[Instance], warnings: list[str]) -> None:
    for keyword, meta_keyword in (
        ("SOPInstanceUID", "MediaStorageSOPInstanceUID"),
        ("SOPClassUID", "MediaStorageSOPClassUID"),
    ):
        filled = 0
        for instance in instances:
            header = instance.header
            if text(header, keyword):
                continue
            value = meta_text(header, meta_keyword)
            if value:
                setattr(header, keyword, value)
                filled += 1
        if filled:
            warnings.append(
                f"{keyword} was empty in {filled} dataset(s); taken from {meta_keyword} "
                "of the file meta header"
            )


def _fill_study_uids(instances: list[Instance], warnings: list[str]) -> None:
    derived: dict[str, int] = defaultdict(int)
    for instance in instances:
        header = instance.header
        if text(header, "StudyInstanceUID"):
            continue
        parts = [f"{k}={text(header, k)}" for k in STUDY_KEYWORDS]
        uid = derived_uid("habitus-study", *parts)
        header.StudyInstanceUID = uid
        derived[uid] += 1
    for uid, count in derived.items():
        warnings.append(
            f"StudyInstanceUID is missing in {count} dataset(s) and in the file meta header; "
            f"derived {uid} from {', '.join(STUDY_KEYWORDS)}"
        )


def series_key(header: Dataset) -> tuple[str, ...]:
    """What instances of one series share, for grouping those without a SeriesInstanceUID."""
    orientation = floats(header, "ImageOrientationPatient") or ()
    spacing = floats(header, "PixelSpacing") or ()
    return (
        text(header, "StudyInstanceUID"),
        text(header, "FrameOfReferenceUID"),
        text(header, "Modality"),
        ",".join(f"{v:.4f}" for v in orientation),
        ",".join(f"{v:.4f}" for v in spacing),
        text(header, "Rows"),
        text(header, "Columns"),
        text(header, "SeriesNumber"),
        text(header, "SeriesDescription"),
        "\\".join(texts(header, "ImageType")[:3]),
        text(header, "ConvolutionKernel"),
        text(header, "SliceThickness"),
    )


def _fill_series_uids(instances: list[Instance], warnings: list[str]) -> None:
    derived: dict[str, int] = defaultdict(int)
    for instance in instances:
        header = instance.header
        if text(header, "SeriesInstanceUID"):
            continue
        uid = derived_uid("habitus-series", *series_key(header))
        header.SeriesInstanceUID = uid
        derived[uid] += 1
    for uid, count in derived.items():
        warnings.append(
            f"SeriesInstanceUID is missing in {count} dataset(s); grouped them by frame of "
            "reference, orientation, pixel spacing, image size, series number, description, "
            f"image type, kernel and thickness, and derived {uid}"
        )


def _fill_missing_sop_instance_uids(group: SeriesGroup, warnings: list[str]) -> None:
    filled = 0
    for instance in group.instances:
        header = instance.header
        if text(header, "SOPInstanceUID"):
            continue
        header.SOPInstanceUID = derived_uid(
            "habitus-instance",
            group.series_instance_uid,
            text(header, "InstanceNumber"),
            text(header, "ImagePositionPatient"),
            instance.name,
        )
        filled += 1
    if filled:
        warnings.append(
            f"SOPInstanceUID is missing in {filled} dataset(s) of series "
            f"{group.series_instance_uid} and in their file meta headers; derived from the "
            "series UID, instance number and image position"
        )


def _drop_repeated_instances(group: SeriesGroup, warnings: list[str]) -> None:
    """Keep the first copy of an instance received twice (same SOP Instance UID)."""
    seen: dict[str, str] = {}
    kept: list[Instance] = []
    repeated: list[str] = []
    for instance in group.instances:
        uid = text(instance.header, "SOPInstanceUID")
        if uid in seen:
            repeated.append(f"{instance.name} (same as {seen[uid]})")
            continue
        seen[uid] = instance.name
        kept.append(instance)
    if repeated:
        group.instances = kept
        warnings.append(
            f"ignored {len(repeated)} repeated cop(ies) of instances already read in series "
            f"{group.series_instance_uid}: {', '.join(repeated[:5])}"
            + (f" and {len(repeated) - 5} more" if len(repeated) > 5 else "")
        )
