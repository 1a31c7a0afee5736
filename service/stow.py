"""STOW-RS: which posted instances were stored, which were not and why (DICOM PS3.18 10.5).

An instance is stored when it joins a job: it belongs to the series chosen for analysis
and was placed in the job's input. Every other part of the request is reported with the
standard's Failure Reason (PS3.18 Table I.2-2): a part that is not DICOM in the Other
Failures Sequence, an identified instance in the Failed SOP Sequence. Habitus neither
coerces nor discards elements of what it stores, so no Warning Reason is ever given.

The answer is the Store Instances Response Module (PS3.18 Annex I) as DICOM JSON. Habitus
serves no Studies Retrieve transaction, so the Retrieve URLs are present but empty (they are
Type 2). The job ids, and each refusal's reason in words, travel in a private block
(creator ``HABITUS``) that any DICOM JSON reader passes through.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset

from service.part10 import Part10Meta
from service.uploads import UnpackedUpload

DICOM_JSON_MEDIA_TYPE = "application/dicom+json"
PRIVATE_GROUP = 0x0011
PRIVATE_CREATOR = "HABITUS"
JOB_IDS_ELEMENT = 0x01  # (0011,xx01) LO, one value per job
REASON_ELEMENT = 0x02  # (0011,xx02) UT, a failure's reason in words
IDENTITY_TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "Modality"]
ANALYSED_MODALITY = "CT"


class FailureReason(enum.IntEnum):
    """Failure Reason (0008,1197) values of PS3.18 Table I.2-2, and Habitus's own."""

    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
    PROCESSING_FAILURE = 0x0110
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    # Habitus's code, in the standard's "cannot understand" range (as dcm4chee uses it): the
    # instance belongs to another study than the one the request was posted to
    STUDY_INSTANCE_UID_MISMATCH = 0xC409


@dataclass(frozen=True)
class Failure:
    reason: FailureReason
    text: str
    sop_class_uid: str | None = None  # None: the part could not be identified
    sop_instance_uid: str | None = None


@dataclass(frozen=True)
class Stored:
    sop_class_uid: str
    sop_instance_uid: str


@dataclass
class StoreOutcome:
    stored: list[Stored] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)

    @property
    def status(self) -> HTTPStatus:
        """200 all stored, 202 some stored, 409 none (PS3.18 Table 10.5.3-1)."""
        if not self.stored:
            return HTTPStatus.CONFLICT
        return HTTPStatus.ACCEPTED if self.failures else HTTPStatus.OK

    def dicom_json(self) -> dict[str, Any]:
        """The Store Instances Response Module as DICOM JSON."""
        response = Dataset()
        response.add_new(0x00081190, "UR", None)  # RetrieveURL: no Studies Retrieve here
        failed = [f for f in self.failures if f.sop_instance_uid is not None]
        other = [f for f in self.failures if f.sop_instance_uid is None]
        if failed:
            response.FailedSOPSequence = [_failed_item(f) for f in failed]
        if self.stored:
            response.ReferencedSOPSequence = [_stored_item(s) for s in self.stored]
        if other:
            response.OtherFailuresSequence = [_other_item(f) for f in other]
        if self.job_ids:
            block = response.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
            block.add_new(JOB_IDS_ELEMENT, "LO", list(self.job_ids))
        return response.to_json_dict()


def _stored_item(stored: Stored) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = stored.sop_class_uid
    item.ReferencedSOPInstanceUID = stored.sop_instance_uid
    item.add_new(0x00081190, "UR", None)
    return item


def _failed_item(failure: Failure) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = failure.sop_class_uid
    item.ReferencedSOPInstanceUID = failure.sop_instance_uid
    item.FailureReason = int(failure.reason)
    _add_reason_text(item, failure.text)
    return item


def _other_item(failure: Failure) -> Dataset:
    item = Dataset()
    item.FailureReason = int(failure.reason)
    _add_reason_text(item, failure.text)
    return item


def _add_reason_text(item: Dataset, text: str) -> None:
    block = item.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(REASON_ELEMENT, "UT", text)


@dataclass(frozen=True)
class Identity:
    """What sorting an instance needs: its SOP ids (from the file meta) and its place."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str


def identify(
    upload: UnpackedUpload, outcome: StoreOutcome, study_uid: str | None
) -> list[Identity]:
    """The instances that may be submitted; the rest are recorded in ``outcome`` as failures
    (and removed): parts that are not DICOM, unreadable headers, another study than
    ``study_uid`` (the study the request was posted to, if any)."""
    for ignored in upload.ignored:
        outcome.failures.append(Failure(FailureReason.CANNOT_UNDERSTAND, ignored))
    found: list[Identity] = []
    for path in upload.files:
        meta = upload.meta[path]
        try:  # the header up to the pixel data, large values left unread
            header = pydicom.dcmread(
                path, stop_before_pixels=True, defer_size=1024, specific_tags=IDENTITY_TAGS
            )
            study = str(header.get("StudyInstanceUID", "") or "")
            series = str(header.get("SeriesInstanceUID", "") or "")
        except Exception as exc:  # whatever a damaged header makes the parser raise
            reason = f"the header cannot be read ({exc})"
            _refuse(outcome, path, meta, FailureReason.CANNOT_UNDERSTAND, reason)
            continue
        if not study or not series:
            reason = "the data set names no Study or Series Instance UID"
            _refuse(outcome, path, meta, FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, reason)
            continue
        if study_uid is not None and study != study_uid:
            reason = f"the instance belongs to study {study}, not to study {study_uid}"
            _refuse(outcome, path, meta, FailureReason.STUDY_INSTANCE_UID_MISMATCH, reason)
            continue
        modality = str(header.get("Modality", "") or "")
        found.append(
            Identity(path, meta.sop_class_uid, meta.sop_instance_uid, study, series, modality)
        )
    return found


def _refuse(
    outcome: StoreOutcome, path: Path, meta: Part10Meta, reason: FailureReason, text: str
) -> None:
    path.unlink()  # not submitted
    outcome.failures.append(Failure(reason, text, meta.sop_class_uid, meta.sop_instance_uid))


def sort_submitted(
    instances: list[Identity],
    analysed_series: set[str],
    outcome: StoreOutcome,
    refusal: str | None,
) -> None:
    """Record each submitted instance as stored (its series got a job) or failed, why."""
    for instance in instances:
        if instance.series_instance_uid in analysed_series:
            outcome.stored.append(Stored(instance.sop_class_uid, instance.sop_instance_uid))
            continue
        if instance.modality != ANALYSED_MODALITY:
            reason = FailureReason.SOP_CLASS_NOT_SUPPORTED
            found = instance.modality or "of no modality"
            text = f"Habitus analyses {ANALYSED_MODALITY}; this instance is {found}"
        else:
            reason = FailureReason.PROCESSING_FAILURE
            text = refusal or (
                f"series {instance.series_instance_uid} was not chosen for analysis; "
                "another series of its study was"
            )
        outcome.failures.append(
            Failure(reason, text, instance.sop_class_uid, instance.sop_instance_uid)
        )
