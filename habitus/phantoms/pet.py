"""Synthetic PET series of known uptake per tissue, for tests and demonstrations.

Activity is painted per class of a CT label map at a chosen SUVbw, blurred by the scanner's
resolution (Gaussian, ``fwhm_mm``) on the CT grid, averaged into PET voxels of a whole number
of CT voxels, given multiplicative noise, and written as PET Image Storage with the
radiopharmaceutical, decay and units attributes the SUV calculation reads. Each slice gets its
own RescaleSlope, as scanners write them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PositronEmissionTomographyImageStorage

from habitus.labels import Tissue
from habitus.pet.suv import PHILIPS_PRIVATE_CREATOR, decayed_dose
from habitus.uids import derived_uid
from habitus.volume import Geometry

F18_HALF_LIFE_S = 6586.2
TRUE_DOSE_BQ = 370.0e6
TRUE_WEIGHT_KG = 75.0
SCAN_TIME = datetime(2024, 1, 1, 12, 0, 0)  # series and acquisition start

# Typical FDG uptake (SUVbw) of the classes in a fasting adult.
TYPICAL_SUV: dict[Tissue, float] = {
    Tissue.SKIN: 0.8,
    Tissue.BONE: 1.6,
    Tissue.MUSCLE: 0.9,
    Tissue.AVF: 0.4,
    Tissue.SF: 0.3,
    Tissue.IO: 2.2,
    Tissue.CNS: 6.0,
}


@dataclass(frozen=True)
class PetHeader:
    """The header values that decide the SUV; None leaves the attribute out."""

    units: str = "BQML"
    decay_correction: str = "START"
    corrected_image: tuple[str, ...] = ("ATTN", "DECY", "SCAT", "RAN")
    dose_bq: float | None = TRUE_DOSE_BQ
    half_life_s: float | None = F18_HALF_LIFE_S
    uptake_s: float = 3600.0  # injection to scan start
    injection_as_datetime: bool = True  # RadiopharmaceuticalStartDateTime, else StartTime
    weight_kg: float | None = TRUE_WEIGHT_KG
    height_m: float | None = 1.75
    sex: str = "M"
    philips_suv_factor: float | None = None  # with units CNTS: SUVbw per count

    @property
    def injection_time(self) -> datetime:
        return SCAN_TIME - timedelta(seconds=self.uptake_s)

    def bq_ml_per_suv(self) -> float:
        """Activity concentration (Bq/ml) the images hold for an SUVbw of 1.

        A header that leaves the dose, weight or half-life out still gets images made with
        the defaults (the truth the header fails to state)."""
        injected = self.dose_bq or TRUE_DOSE_BQ
        half_life = self.half_life_s or F18_HALF_LIFE_S
        dose = (
            injected
            if self.decay_correction == "ADMIN"
            else decayed_dose(injected, self.uptake_s, half_life)
        )
        return dose / ((self.weight_kg or TRUE_WEIGHT_KG) * 1000.0)


def pet_image(
    labels: NDArray[np.uint8],
    ct: Geometry,
    suv: Mapping[Tissue, float],
    *,
    per_unit: float,
    factor: tuple[int, int, int] = (2, 2, 2),
    fwhm_mm: float = 6.0,
    noise: float = 0.06,
    seed: int = 0,
) -> tuple[NDArray[np.float32], Geometry]:
    """Pixel values (``per_unit`` per SUV) on a PET grid ``factor`` times coarser than the CT."""
    from scipy import ndimage

    lut = np.zeros(len(Tissue), dtype=np.float32)
    for tissue, value in suv.items():
        lut[int(tissue)] = value * per_unit
    activity = lut[labels]
    # Noise before the blur: reconstructed PET noise is correlated over the resolution.
    rng = np.random.default_rng(seed)
    activity *= rng.normal(1.0, noise, size=activity.shape).astype(np.float32)
    sigma = [fwhm_mm / 2.3548 / s for s in ct.spacing]
    activity = ndimage.gaussian_filter(activity, sigma, mode="nearest")
    fk, fj, fi = factor
    nk, nj, ni = (n // f for n, f in zip(labels.shape, factor, strict=True))
    blocks = activity[: nk * fk, : nj * fj, : ni * fi].reshape(nk, fk, nj, fj, ni, fi)
    pet = blocks.mean(axis=(1, 3, 5))
    spacing = (ct.spacing[0] * fk, ct.spacing[1] * fj, ct.spacing[2] * fi)
    # The PET voxel centre is the centre of its block of CT voxels.
    shift = np.asarray([(f - 1) / 2.0 * s for f, s in zip(factor, ct.spacing, strict=True)])
    origin = np.asarray(ct.origin) + ct.matrix @ shift
    corner = (float(origin[0]), float(origin[1]), float(origin[2]))
    geometry = Geometry(spacing, corner, ct.direction)
    return np.clip(pet, 0.0, None).astype(np.float32), geometry


def write_pet_series(
    out_dir: Path,
    values: NDArray[np.float32],
    geometry: Geometry,
    header: PetHeader,
    *,
    study_uid: str,
    frame_of_reference_uid: str,
    series_number: int = 6,
    description: str = "PET AC",
) -> list[Path]:
    """Write ``values`` (k, j, i) as PET Image Storage, one file per slice, in k order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    series_uid = derived_uid("habitus-synthetic-series", study_uid, str(series_number))
    matrix = geometry.matrix
    orientation = [*matrix[:, 2], *matrix[:, 1]]
    paths: list[Path] = []
    for k in range(values.shape[0]):
        ds = pet_dataset(header, study_uid, series_uid, frame_of_reference_uid)
        ds.SeriesNumber, ds.SeriesDescription = series_number, description
        ds.SOPInstanceUID = derived_uid("habitus-synthetic-instance", series_uid, str(k))
        ds.InstanceNumber = ds.ImageIndex = k + 1
        ds.NumberOfSlices = values.shape[0]
        position = geometry.slice_position(k)
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.ImageOrientationPatient = [_ds(v) for v in orientation]
        ds.PixelSpacing = [_ds(geometry.spacing[1]), _ds(geometry.spacing[2])]
        ds.SliceThickness = _ds(geometry.spacing[0])
        ds.Rows, ds.Columns = int(values.shape[1]), int(values.shape[2])
        top = float(values[k].max())
        slope = top / 32000.0 if top > 0 else 1.0
        stored = np.rint(values[k] / slope).astype(np.int16)
        ds.RescaleSlope, ds.RescaleIntercept = _ds(slope), 0
        if header.philips_suv_factor is not None:
            block = ds.private_block(0x7053, PHILIPS_PRIVATE_CREATOR, create=True)
            block.add_new(0x00, "DS", _ds(header.philips_suv_factor))
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit, ds.PixelRepresentation = 15, 1
        ds.PixelData = stored.tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        path = out_dir / f"PT{series_number:03d}_{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def pet_dataset(header: PetHeader, study: str, series: str, frame: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = PositronEmissionTomographyImageStorage
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    scan_date, scan_time = SCAN_TIME.strftime("%Y%m%d"), SCAN_TIME.strftime("%H%M%S")
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = scan_date
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = scan_time
    ds.Modality, ds.Manufacturer = "PT", "Habitus"
    ds.PatientName, ds.PatientID = "Phantom^Habitus", "HABITUS-PHANTOM"
    ds.PatientSex = header.sex
    if header.weight_kg is not None:
        ds.PatientWeight = _ds(header.weight_kg)
    if header.height_m is not None:
        ds.PatientSize = _ds(header.height_m)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame, ""
    ds.update(pet_attributes(header))
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
    return ds


def _ds(value: float) -> str:
    """A decimal string of at most 16 characters."""
    text = f"{value:.10g}"
    return text if len(text) <= 16 else f"{value:.6e}"
