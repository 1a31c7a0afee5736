"""Synthetic CT studies for tests, benchmarks and the demo: the phantoms written as DICOM.

The anatomy comes from ``habitus.dicom.phantoms``; here it becomes CT (and PET, topogram,
MIP) series with consistent geometry, UIDs and patient data.

    python -m habitus.dicom.synthetic OUT_DIR [--slices N] [--rows R] [--study ct|petct]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
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

from habitus.dicom.phantoms import synthetic_torso, synthetic_trunk, trunk_anatomy, with_noise
from habitus.pet.synthetic import TYPICAL_SUV, PetHeader, pet_attributes, pet_image
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


# --- the DICOM writer --------------------------------------------------------------------


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
    ``habitus.pet.synthetic.PetHeader()`` (370 MBq FDG an hour before, 75 kg).
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


# --- studies -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticStudy:
    """What a synthetic study holds: UIDs by series description, and the expected choice."""

    study_instance_uid: str
    expected_series_uid: str  # the series a correct chooser analyses
    series: dict[str, str] = field(default_factory=dict)  # description -> SeriesInstanceUID
    files: list[Path] = field(default_factory=list)


def write_petct_study(
    out_dir: Path,
    *,
    slices: int = 40,
    rows: int = 96,
    pixel_spacing: float = 4.0,
    slice_spacing: float = 2.0,
    seed: int = 0,
    transfer_syntax: str = ExplicitVRLittleEndian,
    study_uid: str | None = None,
) -> SyntheticStudy:
    """A PET-CT-like study of the synthetic trunk, centred on L3: the CT to analyse plus
    distractors a chooser must refuse.

    Series: 2 'CT Body <spacing> B30f' (expected), 3 'CT Lung <spacing> B70f' (same grid, lung
    kernel),
    4 'CT Body 5.0 B30f' (thick reconstruction), 5 'CT MIP' (DERIVED axial slabs),
    1 'Topogram' (one coronal LOCALIZER image) and 6 'PET AC' (PT in Bq/ml on a
    grid twice the CT's spacing, typical FDG uptake per tissue, complete SUV headers).
    With 120 slices of 2 mm (``habitus demo``) the scan runs from the sacrum to T11: the
    waist, L3 and both counts of the vertebrae lie inside it.
    """
    study_uid = study_uid or derived_uid("habitus-synthetic-study", str(seed), str(slices))
    frame_of_reference = derived_uid("habitus-synthetic-for", study_uid)
    shape = (slices, rows, rows)
    spacing = (slice_spacing, pixel_spacing, pixel_spacing)
    geometry = axial_geometry(shape, spacing)
    extent = (slices - 1) * slice_spacing
    z_start = geometry.z_of_slice(0)
    l3_z = z_start + extent / 2.0  # every series centred on L3, the same anatomy at each z
    anatomy, labels = trunk_anatomy(shape, spacing, z_start, l3_z)
    hu = with_noise(anatomy, seed)
    series: dict[str, str] = {}
    files: list[Path] = []
    thin = f"{slice_spacing:g}"

    def add(
        description: str,
        number: int,
        data: NDArray[np.int16],
        geo: Geometry,
        *,
        kernel: str = "B30f",
        image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
        modality: str = "CT",
    ) -> None:
        uid = derived_uid("habitus-synthetic-series", study_uid, str(number))
        files.extend(
            write_series(
                out_dir / f"s{number:02d}",
                data,
                geo,
                modality=modality,
                series_description=description,
                series_number=number,
                image_type=image_type,
                kernel=kernel,
                study_uid=study_uid,
                series_uid=uid,
                frame_of_reference_uid=frame_of_reference,
                transfer_syntax=transfer_syntax,
            )
        )
        series[description] = uid

    add(f"CT Body {thin} B30f", 2, hu, geometry, kernel="B30f")
    add(f"CT Lung {thin} B70f", 3, with_noise(anatomy, seed + 1), geometry, kernel="B70f")
    thick_slices = int(extent // 5.0) + 1
    thick_shape = (thick_slices, rows, rows)
    thick_spacing = (5.0, pixel_spacing, pixel_spacing)
    thick_hu, _ = synthetic_trunk(thick_shape, thick_spacing, seed, z_start, l3_z)
    add(
        "CT Body 5 B30f",
        4,
        thick_hu,
        axial_geometry(thick_shape, thick_spacing),
        kernel="B30f",
    )
    mip = np.maximum.reduce([np.roll(hu, shift, axis=0) for shift in (-1, 0, 1)])
    add("CT MIP", 5, mip, geometry, image_type=("DERIVED", "SECONDARY", "AXIAL", "MIP"))
    add(
        "Topogram",
        1,
        _topogram(hu, geometry),
        _topogram_geometry(geometry, shape),
        image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
        kernel="T20f",
    )
    pet, pet_geometry = _pet_volume(labels, geometry, seed)
    add("PET AC", 6, pet, pet_geometry, modality="PT", kernel="")
    return SyntheticStudy(study_uid, series[f"CT Body {thin} B30f"], series, files)


def _topogram(hu: NDArray[np.int16], geometry: Geometry) -> NDArray[np.int16]:
    """A coronal projection (one image): mean attenuation through the body, head at the top."""
    projection = hu.astype(np.float32).mean(axis=1)  # (k, i)
    image = projection[::-1, :]  # rows run head to feet
    return np.clip(np.rint(image), -1024, 3071).astype(np.int16)[np.newaxis]


def _topogram_geometry(geometry: Geometry, shape: tuple[int, int, int]) -> Geometry:
    nk, nj, _ = shape
    top = geometry.slice_position(nk - 1)
    origin = (float(top[0]), float(top[1]) + (nj - 1) / 2.0 * geometry.spacing[1], float(top[2]))
    return Geometry(
        spacing=(1.0, geometry.spacing[0], geometry.spacing[2]),
        origin=origin,
        direction=CORONAL_DIRECTION,
    )


def _pet_volume(
    labels: NDArray[np.uint8], geometry: Geometry, seed: int
) -> tuple[NDArray[np.int16], Geometry]:
    """The study's PET: typical FDG uptake per tissue in Bq/ml as the header's dose, uptake
    time and the patient's weight make it, blurred and noisy, on a grid twice the CT's."""
    values, pet_geometry = pet_image(
        labels, geometry, TYPICAL_SUV, per_unit=PetHeader().bq_ml_per_suv(), seed=seed + 7
    )
    return np.clip(np.rint(values), 0, 32767).astype(np.int16), pet_geometry


def write_ct_study(
    out_dir: Path,
    *,
    slices: int = 100,
    rows: int = 256,
    pixel_spacing: float | None = None,
    slice_spacing: float = 2.5,
    seed: int = 0,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> SyntheticStudy:
    """One axial CT series of the synthetic torso (the field of view is about 400 mm)."""
    spacing_mm = pixel_spacing if pixel_spacing is not None else 400.0 / rows
    shape = (slices, rows, rows)
    spacing = (slice_spacing, spacing_mm, spacing_mm)
    hu, _ = synthetic_torso(shape, spacing, seed)
    study_uid = derived_uid("habitus-synthetic-study", "ct", str(seed), str(slices), str(rows))
    description = f"CT Body {slice_spacing:g} B30f"
    files = write_series(
        out_dir,
        hu,
        axial_geometry(shape, spacing),
        study_uid=study_uid,
        series_description=description,
        series_number=2,
        transfer_syntax=transfer_syntax,
    )
    series_uid = derived_uid("habitus-synthetic-series", study_uid, "2", description)
    return SyntheticStudy(study_uid, series_uid, {description: series_uid}, files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m habitus.dicom.synthetic",
        description="Write a synthetic CT study (DICOM) of a simple torso phantom.",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--slices", type=int, default=100, help="CT slices (default 100)")
    parser.add_argument("--rows", type=int, default=256, help="rows = columns (default 256)")
    parser.add_argument("--slice-spacing", type=float, default=2.5, help="mm (default 2.5)")
    parser.add_argument(
        "--study",
        choices=("ct", "petct"),
        default="ct",
        help="one CT series, or a PET-CT study with distractor series",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.study == "petct":
        study = write_petct_study(
            args.out_dir,
            slices=args.slices,
            rows=args.rows,
            pixel_spacing=400.0 / args.rows,
            slice_spacing=args.slice_spacing,
            seed=args.seed,
        )
    else:
        study = write_ct_study(
            args.out_dir,
            slices=args.slices,
            rows=args.rows,
            slice_spacing=args.slice_spacing,
            seed=args.seed,
        )
    print(  # noqa: T201  (command-line output)
        f"wrote {len(study.files)} files to {args.out_dir}; the CT to analyse is series "
        f"{study.expected_series_uid}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
