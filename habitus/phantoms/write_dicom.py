"""The one DICOM writer of the phantoms: a volume of HU, or of PET activity, as one image per
slice, with consistent geometry, UIDs and patient data.

Every attribute a phantom's file carries is set here: the study, series and patient attributes
every series shares (``series_attributes``), the CT's and, from a ``PetHeader``, the PET's
(``pet_attributes``: units, decay correction, radiopharmaceutical, SUV scaling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
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

from habitus.pet.suv import PHILIPS_PRIVATE_CREATOR
from habitus.phantoms.pet import SCAN_TIME, PetHeader
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
_STORED_MAX = 32000  # floating values are scaled per slice to at most this stored value


@dataclass(frozen=True)
class Patient:
    """The patient attributes of a phantom's series; None leaves the attribute out."""

    name: str = "Phantom^Habitus"
    patient_id: str = "HABITUS-PHANTOM"
    sex: str = "M"
    size_m: float | None = 1.75
    weight_kg: float | None = 75.0


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
    values: NDArray[np.integer] | NDArray[np.floating],
    geometry: Geometry,
    *,
    pet: PetHeader | None = None,
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
    """Write ``values`` (k, j, i) as one CT image per slice, or one PET image per slice when
    ``pet`` is given; returns the files in k order.

    CT values are HU stored as ``values - rescale_intercept``. PET values are activity as
    ``pet`` states its units, stored with intercept 0 and the header's attributes (its
    patient's weight, height and sex replace the ``patient_*`` arguments, since the SUV reads
    them). Integer values are stored exactly (unsigned when they fit, signed otherwise) with
    RescaleSlope 1; floating values, as PET scanners write them, with a RescaleSlope of their
    own per slice. ``transfer_syntax`` may be any syntax pydicom can encode: Explicit/Implicit
    VR Little Endian, RLE Lossless, JPEG 2000 Lossless, JPEG-LS Lossless.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or derived_uid(
        "habitus-synthetic-series", study_uid, str(series_number), series_description
    )
    frame_of_reference_uid = frame_of_reference_uid or derived_uid(
        "habitus-synthetic-for", study_uid
    )
    intercept = 0 if pet is not None else rescale_intercept  # PET Image requires 0
    pixels, slopes = _stored_pixels(values, intercept)
    matrix = geometry.matrix
    row_dir, col_dir = matrix[:, 2], matrix[:, 1]
    thickness = slice_thickness if slice_thickness is not None else geometry.spacing[0]
    common = series_attributes(
        study_uid=study_uid,
        series_uid=series_uid,
        frame_of_reference_uid=frame_of_reference_uid,
        pet=pet,
        series_number=series_number,
        series_description=series_description,
        image_type=image_type,
        patient=Patient(patient_name, patient_id, patient_sex, patient_size_m, patient_weight_kg),
    )
    slices = pixels.shape[0]
    prefix = "PT" if pet is not None else "CT"
    paths: list[Path] = []
    for k in range(slices):
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
        ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
        ds.RescaleIntercept = intercept
        ds.RescaleSlope = _ds(slopes[k])
        if pet is not None:
            ds.NumberOfSlices = slices
            ds.ImageIndex = k + 1
        else:
            ds.RescaleType = "HU"
            ds.KVP = 120
            ds.ConvolutionKernel = kernel
            ds.WindowCenter, ds.WindowWidth = 40, 400
        path = out_dir / f"{prefix}{series_number:03d}_{k + 1:04d}.dcm"
        _save(ds, pixels[k], path, transfer_syntax)
        paths.append(path)
    return paths


def series_attributes(
    *,
    study_uid: str,
    series_uid: str,
    frame_of_reference_uid: str,
    pet: PetHeader | None = None,
    series_number: int = 1,
    series_description: str = "Synthetic CT",
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    patient: Patient = Patient(),
) -> Dataset:
    """The attributes every image of a series shares: study, series, patient and, with
    ``pet``, the PET's (whose patient values replace ``patient``'s)."""
    if pet is not None:
        patient = replace(patient, sex=pet.sex, size_m=pet.height_m, weight_kg=pet.weight_kg)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = list(image_type)
    ds.SOPClassUID = PositronEmissionTomographyImageStorage if pet is not None else CTImageStorage
    scan_date, scan_time = SCAN_TIME.strftime("%Y%m%d"), SCAN_TIME.strftime("%H%M%S")
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = scan_date
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = scan_time
    ds.AccessionNumber = ""
    ds.Modality = "PT" if pet is not None else "CT"
    ds.Manufacturer = "Habitus"
    ds.ManufacturerModelName = "Synthetic phantom"
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = series_description
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = patient.sex
    if patient.size_m is not None:
        ds.PatientSize = _ds(patient.size_m)
    if patient.weight_kg is not None:
        ds.PatientWeight = _ds(patient.weight_kg)
    ds.BodyPartExamined = "ABDOMEN"
    if pet is None:  # PET states it with PatientOrientationCodeSequence instead
        ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    if pet is not None:
        ds.update(pet_attributes(pet))
    return ds


def pet_attributes(header: PetHeader) -> Dataset:
    """The PET Series, Isotope and Image attributes of ``header``: what decides the SUV."""
    ds = Dataset()
    ds.Units, ds.CountsSource = header.units, "EMISSION"
    ds.SeriesType = ["WHOLE BODY", "IMAGE"]
    ds.CorrectedImage = list(header.corrected_image)
    ds.DecayCorrection = header.decay_correction
    ds.DecayFactor, ds.FrameReferenceTime, ds.ActualFrameDuration = 1, 0, 120000
    ds.CollimatorType = "NONE"
    radio = Dataset()
    injection = header.injection_time
    if header.injection_as_datetime:
        radio.RadiopharmaceuticalStartDateTime = injection.strftime("%Y%m%d%H%M%S")
    else:
        radio.RadiopharmaceuticalStartTime = injection.strftime("%H%M%S")
    if header.dose_bq is not None:
        radio.RadionuclideTotalDose = _ds(header.dose_bq)
    if header.half_life_s is not None:
        radio.RadionuclideHalfLife = _ds(header.half_life_s)
    radio.Radiopharmaceutical = "Fluorodeoxyglucose F^18^"
    nuclide = Dataset()
    nuclide.CodeValue, nuclide.CodingSchemeDesignator = "C-111A1", "SRT"
    nuclide.CodeMeaning = "^18^Fluorine"
    radio.RadionuclideCodeSequence = [nuclide]
    ds.RadiopharmaceuticalInformationSequence = [radio]
    ds.PatientOrientationCodeSequence = []
    ds.PatientGantryRelationshipCodeSequence = []
    if header.philips_suv_factor is not None:
        block = ds.private_block(0x7053, PHILIPS_PRIVATE_CREATOR, create=True)
        block.add_new(0x00, "DS", _ds(header.philips_suv_factor))
    return ds


def _stored_pixels(
    values: NDArray[np.integer] | NDArray[np.floating], intercept: int
) -> tuple[NDArray[np.int16] | NDArray[np.uint16], list[float]]:
    """The 16-bit stored values of ``values`` and each slice's RescaleSlope."""
    slices = values.shape[0]
    if np.issubdtype(values.dtype, np.floating):
        stored = np.empty(values.shape, dtype=np.int32)
        slopes = []
        for k in range(slices):  # slice by slice: no float64 copy of a whole PET
            shifted = values[k] - intercept
            top = float(np.abs(shifted).max(initial=0.0))
            slopes.append(top / _STORED_MAX if top > 0 else 1.0)
            stored[k] = np.rint(shifted / slopes[k])
    else:
        stored, slopes = values.astype(np.int32) - intercept, [1.0] * slices
    low, high = int(stored.min(initial=0)), int(stored.max(initial=0))
    limits = np.iinfo(np.int16 if low < 0 else np.uint16)
    if low < limits.min or high > limits.max:
        raise ValueError(
            f"values {values.min()}..{values.max()} do not fit 16 bits with intercept {intercept}"
        )
    if low < 0:
        return stored.astype(np.int16), slopes
    return stored.astype(np.uint16), slopes


def _ds(value: float) -> str:
    """A decimal string of at most 16 characters, as DS requires (-0 written as 0)."""
    value = float(value) + 0.0
    text = f"{value:.10g}"
    return text if len(text) <= 16 else f"{value:.6e}"


def _save(ds: Dataset, frame: NDArray[np.generic], path: Path, syntax: str) -> None:
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
