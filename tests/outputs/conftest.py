"""CT volumes with their source datasets, label maps and reports for the output tests.

Volumes are built here from pydicom datasets (synthetic ones, and the real scans of
../shared/data) following habitus/volume.py's conventions, so the outputs are tested without the
DICOM reader.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from habitus import PIPELINE_VERSION, __version__
from habitus.labels import Tissue
from habitus.metrics.class_volumes import class_measurements
from habitus.outputs.report import InputInfo, ModelSummary, PatientInfo, Report, SeriesInfo
from habitus.segment.base import ModelInfo
from habitus.uids import derived_uid
from habitus.volume import CTVolume, Geometry, SourceSeries
from tests.conftest import missing

DCIODVFY = Path("/usr/bin/dciodvfy")


def fixture_uid(*parts: str) -> str:
    return derived_uid("habitus-test-fixture", *parts)


# --- Building volumes from datasets ------------------------------------------------------------


def volume_from_datasets(datasets: Sequence[Dataset], description: str = "") -> CTVolume:
    """Sort slices along the normal (ascending) and build the CTVolume of habitus/volume.py."""
    first = datasets[0]
    iop = np.asarray(first.ImageOrientationPatient, dtype=np.float64)
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    along = [
        float(np.dot(np.asarray(d.ImagePositionPatient, dtype=np.float64), normal))
        for d in datasets
    ]
    order = np.argsort(along, kind="stable")
    ordered = [datasets[i] for i in order]
    steps = np.diff(np.sort(along))
    interval = float(np.mean(steps)) if len(steps) else float(first.SliceThickness)
    hu = np.stack([_hu(d) for d in ordered])
    headers = [_without_pixels(d) for d in ordered]
    row_mm, col_mm = (float(v) for v in first.PixelSpacing)
    matrix = np.column_stack([normal, col_dir, row_dir])
    x, y, z = (float(v) for v in ordered[0].ImagePositionPatient)
    geometry = Geometry(
        spacing=(interval, row_mm, col_mm), origin=(x, y, z), direction=direction_rows(matrix)
    )
    source = SourceSeries(
        study_instance_uid=str(headers[0].StudyInstanceUID),
        series_instance_uid=str(headers[0].SeriesInstanceUID),
        frame_of_reference_uid=str(headers[0].FrameOfReferenceUID),
        headers=headers,
        description=description or str(first.get("SeriesDescription", "")),
    )
    return CTVolume(
        hu=hu, geometry=geometry, source=source, slice_thickness_mm=float(first.SliceThickness)
    )


def direction_rows(
    matrix: NDArray[np.float64],
) -> tuple[tuple[float, float, float], ...]:
    """Geometry.direction (rows of the matrix whose columns are the k, j, i axes)."""
    return tuple((float(row[0]), float(row[1]), float(row[2])) for row in matrix)


def _hu(ds: Dataset) -> NDArray[np.int16]:
    slope = float(ds.get("RescaleSlope", 1))
    intercept = float(ds.get("RescaleIntercept", 0))
    return np.clip(ds.pixel_array * slope + intercept, -32768, 32767).astype(np.int16)


def _without_pixels(ds: Dataset) -> Dataset:
    header = Dataset()
    header.update({tag: elem for tag, elem in ds.items() if tag != 0x7FE00010})
    header.file_meta = ds.file_meta
    return header


# --- Synthetic CT ----------------------------------------------------------------------------


def synthetic_datasets(
    slices: int = 24, rows: int = 64, columns: int = 64, *, head_first: bool = True
) -> list[Dataset]:
    """An axial CT series with a body-like phantom, slices stored head first by default."""
    study, series, frame = (fixture_uid("synthetic", kind) for kind in ("study", "series", "for"))
    hu = synthetic_hu(slices, rows, columns)
    datasets = []
    for k in range(slices):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = fixture_uid("synthetic", "instance", str(k))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality = "CT"
        ds.Manufacturer = "Synthetic"
        ds.PatientName = "Phantom^Synthetic"
        ds.PatientID = "SYN-001"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "F"
        ds.PatientSize = 1.65
        ds.PatientWeight = 60
        ds.StudyDate, ds.StudyTime = "20240102", "101500"
        ds.SeriesDate, ds.SeriesTime = "20240102", "101600"
        ds.ContentDate, ds.ContentTime = "20240102", "101600"
        ds.AccessionNumber = "ACC1"
        ds.ReferringPhysicianName = ""
        ds.StudyID = "1"
        ds.SeriesNumber = 3
        ds.InstanceNumber = k + 1
        ds.SeriesDescription = "Synthetic torso 2.5 mm"
        ds.PositionReferenceIndicator = ""
        ds.PatientPosition = "HFS"
        ds.KVP = 120
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        # Head first: slice 0 is the most cranial; the volume sorts them the other way round.
        z = 100.0 - 2.5 * k if head_first else 100.0 - 2.5 * (slices - 1) + 2.5 * k
        ds.ImagePositionPatient = [-25.6, -25.6, z]
        ds.SliceLocation = z
        ds.PixelSpacing = [0.8, 0.8]
        ds.SliceThickness = 2.5
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.RescaleType = "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        index = k if head_first else slices - 1 - k
        ds.PixelData = hu[::-1][index].tobytes()  # hu is feet first (ascending z)
        datasets.append(ds)
    return datasets


def synthetic_hu(slices: int, rows: int, columns: int) -> NDArray[np.int16]:
    """Feet-first HU phantom: air, a fat-rimmed ellipse with muscle, organs and a spine."""
    labels = synthetic_labels(slices, rows, columns)
    hu_of = {0: -1000, 1: 20, 2: 700, 3: 50, 4: -100, 5: -110, 6: 45, 7: 30}
    lut = np.array([hu_of[v] for v in range(8)], dtype=np.int16)
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 8, labels.shape).astype(np.int16)
    return lut[labels] + noise


def synthetic_labels(slices: int, rows: int, columns: int) -> NDArray[np.uint8]:
    """Concentric body layers on the ascending-z grid; the two lowest slices are empty and the
    central nervous system exists only in the upper half, so some frames are absent."""
    j, i = np.ogrid[:rows, :columns]
    cj, ci = rows / 2, columns / 2
    r = ((j - cj) / (0.42 * rows)) ** 2 + ((i - ci) / (0.46 * columns)) ** 2
    plane = np.zeros((rows, columns), np.uint8)
    plane[r < 1.0] = Tissue.SKIN
    plane[r < 0.85] = Tissue.SF
    plane[r < 0.6] = Tissue.MUSCLE
    plane[r < 0.42] = Tissue.AVF
    plane[r < 0.22] = Tissue.IO
    spine = ((j - 0.72 * rows) / (0.1 * rows)) ** 2 + ((i - ci) / (0.1 * columns)) ** 2
    plane[spine < 1.0] = Tissue.BONE
    labels = np.repeat(plane[np.newaxis], slices, axis=0)
    canal = ((j - 0.72 * rows) / (0.04 * rows)) ** 2 + ((i - ci) / (0.04 * columns)) ** 2 < 1.0
    labels[slices // 2 :, canal] = Tissue.CNS
    labels[:2] = 0
    return labels


# --- Reports ---------------------------------------------------------------------------------


def make_report(volume: CTVolume, labels: NDArray[np.uint8], model: ModelInfo) -> Report:
    source = volume.source
    chosen = None
    if source is not None:
        chosen = SeriesInfo(
            series_instance_uid=source.series_instance_uid,
            description=source.description,
            modality="CT",
            instances=len(source.headers),
            accepted=True,
        )
    return Report(
        habitus_version=__version__,
        pipeline_version=PIPELINE_VERSION,
        created=datetime(2024, 5, 6, 7, 8, 9, 123456),
        input=InputInfo(
            source="fixture",
            format="dicom" if source is not None else "nifti",
            chosen_series=chosen,
            shape=volume.shape,
            spacing_mm=volume.geometry.spacing,
            slice_thickness_mm=volume.slice_thickness_mm,
        ),
        model=ModelSummary(
            model_id=model.model_id,
            version=model.version,
            kind=model.kind,
            device=model.device,
            sha256=model.sha256,
        ),
        patient=PatientInfo(
            height_cm=165.0,
            weight_kg=60.0,
            sex="F",
            source={"height_cm": "dicom", "weight_kg": "dicom", "sex": "dicom"},
        ),
        classes=class_measurements(labels, volume.hu, volume.geometry),
    )


# --- Fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def model() -> ModelInfo:
    return ModelInfo(model_id="habitus-unet3d-cpu", version="1.2.0", kind="onnx", sha256="ab" * 32)


@pytest.fixture(scope="session")
def synthetic_volume() -> CTVolume:
    return volume_from_datasets(synthetic_datasets())


@pytest.fixture(scope="session")
def synthetic_label_map(synthetic_volume: CTVolume) -> NDArray[np.uint8]:
    return synthetic_labels(*synthetic_volume.shape)


@pytest.fixture(scope="session")
def nifti_volume(synthetic_volume: CTVolume) -> CTVolume:
    return CTVolume(hu=synthetic_volume.hu, geometry=synthetic_volume.geometry, source=None)


@pytest.fixture(scope="session")
def three_slice_volume(shared_data: Path) -> CTVolume:
    files = sorted((shared_data / "dcmqi-ct-3slice" / "ct").glob("*.dcm"))
    return volume_from_datasets([pydicom.dcmread(f) for f in files])


@pytest.fixture(scope="session")
def three_slice_labels(three_slice_volume: CTVolume) -> NDArray[np.uint8]:
    return labels_from_hu(three_slice_volume.hu)


@pytest.fixture(scope="session")
def petct_volume(shared_data: Path) -> CTVolume:
    """The JPEG 2000 PET-CT series; its empty Study, Series and SOP Instance UIDs are filled
    here the way a reader would (SOP values from the file meta header, study and series
    values chosen for the fixture), and SOP Class UID likewise."""
    datasets = []
    for path in sorted((shared_data / "ts-petct-dicom" / "series").iterdir()):
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.StudyInstanceUID = fixture_uid("petct", "study")
        ds.SeriesInstanceUID = fixture_uid("petct", "series")
        datasets.append(ds)
    return volume_from_datasets(datasets)


@pytest.fixture(scope="session")
def petct_labels(petct_volume: CTVolume, shared_data: Path) -> NDArray[np.uint8]:
    """Attenuation classes inside the body, with TotalSegmentator's organs as internal organs
    and its spinal cord as CNS: real anatomy, good enough to exercise the outputs."""
    labels = labels_from_hu(petct_volume.hu)
    reference = reference_on_grid(
        shared_data / "ts-petct-dicom" / "reference_total_v2.nii.gz", petct_volume
    )
    organs = np.isin(reference, [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 18, 19, 20, 51, 52, 62, 63, 64])
    labels[organs] = Tissue.IO
    labels[reference == 79] = Tissue.CNS
    return labels


def labels_from_hu(hu: NDArray[np.int16]) -> NDArray[np.uint8]:
    """A crude body-composition map from HU windows (rows of the body only)."""
    from scipy import ndimage

    body = ndimage.binary_fill_holes(hu > -400, structure=np.ones((1, 3, 3)))
    labels = np.zeros(hu.shape, np.uint8)
    labels[body & (hu >= -190) & (hu <= -30)] = Tissue.SF
    labels[body & (hu > -30) & (hu <= 150)] = Tissue.MUSCLE
    labels[body & (hu > 250)] = Tissue.BONE
    shell = body & ~ndimage.binary_erosion(body, structure=np.ones((1, 3, 3)), iterations=2)
    labels[shell] = Tissue.SKIN
    return labels


def reference_on_grid(path: Path, volume: CTVolume) -> NDArray[np.uint8]:
    """A NIfTI label map on the same grid as ``volume``, reindexed to (k, j, i) via affines."""
    image = cast(nib.Nifti1Image, nib.load(path))
    data = np.asarray(image.dataobj)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    voxel_to_voxel = np.linalg.inv(image.affine) @ lps_to_ras @ volume.geometry.affine
    k, j, i = np.indices(volume.shape).reshape(3, -1)
    index = np.rint(voxel_to_voxel @ np.vstack([k, j, i, np.ones_like(k)]))[:3].astype(int)
    return data[index[0], index[1], index[2]].reshape(volume.shape).astype(np.uint8)


@pytest.fixture(scope="session")
def report_for(model: ModelInfo) -> Callable[[CTVolume, NDArray[np.uint8]], Report]:
    return lambda volume, labels: make_report(volume, labels, model)


def dciodvfy_errors(path: Path) -> list[str]:
    """The "Error" lines dciodvfy prints for a file; skips where dicom3tools is absent."""
    binary = DCIODVFY if DCIODVFY.exists() else shutil.which("dciodvfy")
    if binary is None:
        missing("dciodvfy (dicom3tools) is not installed: cannot validate the IOD")
    result = subprocess.run(
        [str(binary), str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    return [line for line in output.splitlines() if line.startswith("Error")]


def content_items(container: Dataset, meaning: str) -> list[Dataset]:
    """SR content items below ``container`` whose concept name has this meaning (recursive)."""
    found = []
    for item in container.get("ContentSequence", []):
        if item.ConceptNameCodeSequence[0].CodeMeaning == meaning:
            found.append(item)
        found += content_items(item, meaning)
    return found
