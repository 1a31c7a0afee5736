"""DICOM instances for network tests: small synthetic CT slices and the real PET-CT series
with its UIDs restored (its data sets carry empty Study/Series/SOP Instance UIDs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from habitus.uids import derived_uid


def ct_slice(
    study_uid: str,
    series_uid: str,
    index: int,
    size: int = 16,
    sop_uid: str | None = None,
    sop_class_uid: str = CTImageStorage,
    modality: str = "CT",
) -> Dataset:
    """One axial CT slice (``size`` x ``size`` pixels, 1 mm spacing, 2 mm apart)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class_uid
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = derived_uid("frame", study_uid)
    ds.Modality = modality
    ds.PatientID = "NETTEST"
    ds.PatientName = "Net^Test"
    ds.SeriesNumber = 2
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [-float(size) / 2, -float(size) / 2, -2.0 * index]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1.0, 1.0]
    ds.SliceThickness = 2.0
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    pixels = np.full((size, size), -1000, dtype=np.int16)
    pixels[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 40 + index
    ds.PixelData = pixels.tobytes()
    return ds


def ct_series(
    count: int, size: int = 16, study_uid: str | None = None, series_uid: str | None = None
) -> list[Dataset]:
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    return [ct_slice(study_uid, series_uid, i, size) for i in range(count)]


def secondary_capture(study_uid: str) -> Dataset:
    """A non-CT instance of the same study (a screenshot, as scanners add to studies)."""
    return ct_slice(
        study_uid, generate_uid(), 0, sop_class_uid=SecondaryCaptureImageStorage, modality="OT"
    )


def write_series(datasets: list[Dataset], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = directory / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def real_petct_series(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "ts-petct-dicom" / "series").iterdir())


def restore_uids(source: Path, directory: Path) -> list[Path]:
    """Copy the real PET-CT series, filling its empty UIDs so a PACS will store it.

    The SOP Instance UID comes from the file meta header; the Study and Series Instance UIDs
    are derived from the folder so every copy gets the same ones.
    """
    directory.mkdir(parents=True, exist_ok=True)
    study_uid = derived_uid("ts-petct-dicom", "study")
    series_uid = derived_uid("ts-petct-dicom", "series")
    paths = []
    for path in sorted(source.iterdir()):
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.PatientID = ds.PatientID or "TS-PETCT"
        out = directory / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(out, enforce_file_format=True)
        paths.append(out)
    return paths


def iter_files(directory: Path) -> Iterator[Path]:
    return (p for p in sorted(directory.rglob("*.dcm")) if p.is_file())
