"""The thin DICOM writer of the phantoms: a volume of HU (or PET activity) as one image per
slice, with consistent geometry, UIDs and patient data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    PositronEmissionTomographyImageStorage,
    generate_uid,
)

from habitus.phantoms.pet import PetHeader, pet_attributes
from habitus.uids import derived_uid
from habitus.volume import Geometry

AXIAL_DIRECTION: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 1.0),
    (0.0, 1.0, 0.0),
    (1.0, 0.0, 0.0),
)  # k -> +z (towards the head), j -> +y (posterior), i -> +x (patient left)
CORONAL_DIRECTION: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 1.0),
    (1.0, 0.0, 0.0),
    (0.0, -1.0, 0.0),
)  # k -> +y, j -> -z (rows run head to feet), i -> +x

_UNCOMPRESSED = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}


def axial_geometry(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    z_start: float = -400.0,
) -> Geometry:
    """Head-first-supine axial geometry centred on the table axis, slices ascending in z."""
    _, nj, ni = shape
    origin = (-(ni - 1) / 2.0 * spacing[2], -(nj - 1) / 2.0 * spacing[1], z_start)
    return Geometry(spacing=spacing, origin=origin, direction=AXIAL_DIRECTION)


def write_series(
    out_dir: Path,
    hu: NDArray[np.int16],
    geometry: Geometry,
    *,
    modality: str = "CT",
    series_description: str = "Synthetic CT",
    series_number: int = 1,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    slice_thickness: float | None = None,
    kernel: str = "B30f",
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    patient_size_m: float | None = 1.75,
    patient_weight_kg: float | None = 75.0,
    patient_sex: str = "M",
    patient_id: str = "HABITUS-PHANTOM",
    patient_name: str = "Phantom^Habitus",
    rescale_intercept: int = -1024,
) -> list[Path]:
    """Write ``hu`` (k, j, i) as one CT (or PT) image per slice; returns the files in k order.

    CT values are HU stored as ``hu - rescale_intercept`` (unsigned when that fits, signed
    otherwise). For ``modality="PT"`` the values are activity concentration (Bq/ml) written as
    PET Image Storage with intercept 0 and the complete SUV header of
    ``habitus.phantoms.pet.PetHeader()`` (370 MBq FDG an hour before, 75 kg).
    ``transfer_syntax`` may be any syntax pydicom can encode: Explicit/Implicit VR Little
    Endian, RLE Lossless, JPEG 2000 Lossless, JPEG-LS Lossless.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or derived_uid(
        "habitus-synthetic-series", study_uid, str(series_number), series_description
    )
    frame_of_reference_uid = frame_of_reference_uid or derived_uid(
        "habitus-synthetic-for", study_uid
    )
    is_pet = modality.upper() == "PT"
    intercept = 0 if is_pet else rescale_intercept
    stored = hu.astype(np.int32) - intercept
    signed = int(stored.min(initial=0)) < 0
    dtype = np.int16 if signed else np.uint16
    limits = np.iinfo(dtype)
    if stored.size and (int(stored.min()) < limits.min or int(stored.max()) > limits.max):
        raise ValueError(
            f"values {int(hu.min())}..{int(hu.max())} do not fit 16 bits with intercept {intercept}"
        )
    pixels = stored.astype(dtype)
    matrix = geometry.matrix
    row_dir, col_dir = matrix[:, 2], matrix[:, 1]
    thickness = slice_thickness if slice_thickness is not None else geometry.spacing[0]
    common = _common_attributes(
        modality=modality,
        study_uid=study_uid,
        series_uid=series_uid,
        frame_of_reference_uid=frame_of_reference_uid,
        series_number=series_number,
        series_description=series_description,
        image_type=image_type,
        patient=(patient_name, patient_id, patient_sex, patient_size_m, patient_weight_kg),
    )
    prefix = "PT" if is_pet else "CT"
    paths: list[Path] = []
    for k in range(pixels.shape[0]):
        ds = Dataset()
        ds.update(common)
        ds.SOPInstanceUID = derived_uid("habitus-synthetic-instance", series_uid, str(k))
        ds.InstanceNumber = k + 1
        position = geometry.slice_position(k)
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [_ds(geometry.spacing[1]), _ds(geometry.spacing[2])]
        ds.SliceThickness = _ds(thickness)
        ds.SliceLocation = _ds(float(position[2]))
        ds.Rows, ds.Columns = int(pixels.shape[1]), int(pixels.shape[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleIntercept = intercept
        ds.RescaleSlope = 1
        if is_pet:
            _add_pet_attributes(ds, k, pixels.shape[0])
        else:
            ds.RescaleType = "HU"
            ds.KVP = 120
            ds.ConvolutionKernel = kernel
            ds.WindowCenter, ds.WindowWidth = 40, 400
        path = out_dir / f"{prefix}{series_number:03d}_{k + 1:04d}.dcm"
        _save(ds, pixels[k], path, transfer_syntax, is_pet)
        paths.append(path)
    return paths


def _ds(value: float) -> str:
    """A decimal string of at most 16 characters, as DS requires."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def _common_attributes(
    *,
    modality: str,
    study_uid: str,
    series_uid: str,
    frame_of_reference_uid: str,
    series_number: int,
    series_description: str,
    image_type: Sequence[str],
    patient: tuple[str, str, str, float | None, float | None],
) -> Dataset:
    name, patient_id, sex, size_m, weight_kg = patient
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = list(image_type)
    ds.SOPClassUID = (
        PositronEmissionTomographyImageStorage if modality.upper() == "PT" else CTImageStorage
    )
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240101"
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = "120000"
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = "Habitus"
    ds.ManufacturerModelName = "Synthetic phantom"
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = series_description
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = sex
    if size_m is not None:
        ds.PatientSize = _ds(size_m)
    if weight_kg is not None:
        ds.PatientWeight = _ds(weight_kg)
    ds.BodyPartExamined = "ABDOMEN"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    return ds


def _add_pet_attributes(ds: Dataset, k: int, slices: int) -> None:
    """The PET Series, Isotope and Image attributes a PET Image Storage instance requires:
    the synthetic PET's complete header (dose, injection time, half-life), in one place."""
    ds.update(pet_attributes(PetHeader()))
    ds.NumberOfSlices = slices
    ds.ImageIndex = k + 1
    del ds.PatientPosition  # PET states it with PatientOrientationCodeSequence instead


def _save(ds: Dataset, frame: NDArray[np.generic], path: Path, syntax: str, is_pet: bool) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    if UID(syntax) in _UNCOMPRESSED:
        meta.TransferSyntaxUID = UID(syntax)
        ds.PixelData = np.ascontiguousarray(frame).tobytes()
    else:
        ds.compress(syntax, np.ascontiguousarray(frame), generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)
