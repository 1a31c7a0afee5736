"""The synthetic torso and the DICOM writers used by tests, benchmarks and the demo."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, RLELossless

from habitus.anatomy.landmarks import find_anatomy
from habitus.dicom import load_ct
from habitus.labels import BONE_HU_MIN, FAT_HU, MUSCLE_HU, Tissue
from habitus.pet.suv import PHILIPS_PRIVATE_CREATOR
from habitus.phantoms.pet import PetHeader
from habitus.phantoms.studies import main, write_petct_study
from habitus.phantoms.torso import synthetic_torso
from habitus.phantoms.trunk import LEVELS, synthetic_trunk
from habitus.phantoms.write_dicom import axial_geometry, write_series
from tests.dicom.support import small_series

DCIODVFY = Path("/usr/bin/dciodvfy")


def test_torso_has_every_class_with_plausible_hu() -> None:
    hu, labels = synthetic_torso((24, 96, 96), (5.0, 4.0, 4.0), seed=3)
    assert hu.dtype == np.int16 and labels.dtype == np.uint8 and hu.shape == labels.shape
    assert set(np.unique(labels)) == {int(t) for t in Tissue}
    median = {t: float(np.median(hu[labels == t])) for t in Tissue}
    assert FAT_HU[0] < median[Tissue.SF] < FAT_HU[1]
    assert FAT_HU[0] < median[Tissue.AVF] < FAT_HU[1]
    assert MUSCLE_HU[0] < median[Tissue.MUSCLE] < MUSCLE_HU[1]
    assert 30 <= median[Tissue.IO] <= 70
    assert median[Tissue.BONE] > BONE_HU_MIN
    assert 0 <= median[Tissue.CNS] <= 50
    assert median[Tissue.BACKGROUND] < -800  # air and lungs
    # Abdominal visceral fat only below the thorax, lungs only in it.
    assert not np.any(labels[-2:] == Tissue.AVF) and np.any(labels[:10] == Tissue.AVF)
    lung = (labels == Tissue.BACKGROUND) & (hu > -950) & (hu < -700)
    assert not np.any(lung[:10]) and np.any(lung[-2:])


def test_torso_is_reproducible_and_seeded() -> None:
    a, labels_a = synthetic_torso((4, 32, 32), (2.0, 10.0, 10.0), seed=1)
    b, labels_b = synthetic_torso((4, 32, 32), (2.0, 10.0, 10.0), seed=1)
    c, labels_c = synthetic_torso((4, 32, 32), (2.0, 10.0, 10.0), seed=2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(labels_a, labels_c)  # the anatomy does not depend on noise
    assert not np.array_equal(a, c)


def test_torso_anatomy_is_in_millimetres() -> None:
    """The same body at two grid resolutions: class fractions of the field agree."""
    _, coarse = synthetic_torso((8, 64, 64), (5.0, 6.0, 6.0))
    _, fine = synthetic_torso((8, 128, 128), (5.0, 3.0, 3.0))
    for tissue in (Tissue.SF, Tissue.MUSCLE, Tissue.AVF):
        assert np.mean(coarse == tissue) == pytest.approx(np.mean(fine == tissue), rel=0.15)


# The demo's scan (120 slices of 2 mm, centred on L3) on a coarser in-plane grid.
TRUNK_SHAPE = (120, 128, 128)
TRUNK_SPACING = (2.0, 3.125, 3.125)


@pytest.fixture(scope="module")
def trunk() -> tuple[NDArray[np.int16], NDArray[np.uint8]]:
    return synthetic_trunk(TRUNK_SHAPE, TRUNK_SPACING)


def test_trunk_has_every_class_with_plausible_hu(
    trunk: tuple[NDArray[np.int16], NDArray[np.uint8]],
) -> None:
    hu, labels = trunk
    assert set(np.unique(labels)) == {int(t) for t in Tissue}
    median = {t: float(np.median(hu[labels == t])) for t in Tissue}
    assert FAT_HU[0] < median[Tissue.AVF] < FAT_HU[1]
    assert MUSCLE_HU[0] < median[Tissue.MUSCLE] < MUSCLE_HU[1]
    assert median[Tissue.BONE] > BONE_HU_MIN


def test_trunk_landmarks_are_where_its_anatomy_puts_them(
    trunk: tuple[NDArray[np.int16], NDArray[np.uint8]],
) -> None:
    """On the exact labels the landmark search finds the last rib, the crest and L3 at their
    built heights, and the waist between the first two holds L3."""
    _, labels = trunk
    geometry = axial_geometry(TRUNK_SHAPE, TRUNK_SPACING)
    l3_z = geometry.z_of_slice(0) + (TRUNK_SHAPE[0] - 1) * TRUNK_SPACING[0] / 2.0
    found = find_anatomy(labels, geometry).landmarks
    assert found.last_rib.present and found.iliac_crest.present and found.l3.present
    assert found.iliac_crest.z_mm == pytest.approx(l3_z - 35.0, abs=3.0)
    assert found.last_rib.z_mm == pytest.approx(l3_z + 47.5, abs=4.0)
    assert found.l3.extent_z_mm is not None
    assert found.l3.extent_z_mm[0] == pytest.approx(l3_z + LEVELS["L3"][0], abs=3.0)
    assert found.l3.extent_z_mm[1] == pytest.approx(l3_z + LEVELS["L3"][1], abs=3.0)
    assert found.iliac_crest.z_mm < found.l3.extent_z_mm[0] < found.l3.extent_z_mm[1]
    assert found.l3.extent_z_mm[1] < found.last_rib.z_mm
    assert found.l3.confidence >= 0.85  # counted from the sacrum and from T12 alike
    assert found.findings == []


def test_trunk_is_reproducible_and_its_anatomy_fixed_in_z() -> None:
    a, labels_a = synthetic_trunk((8, 32, 32), (5.0, 12.0, 12.0), seed=1, z_start=-100.0)
    b, labels_b = synthetic_trunk((8, 32, 32), (5.0, 12.0, 12.0), seed=1, z_start=-100.0)
    c, labels_c = synthetic_trunk((8, 32, 32), (5.0, 12.0, 12.0), seed=2, z_start=-100.0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(labels_a, labels_c)
    assert not np.array_equal(a, c)
    # Half the slice interval, the same L3: every other slice is the same anatomy.
    _, fine = synthetic_trunk((15, 32, 32), (2.5, 12.0, 12.0), z_start=-100.0, l3_z=-82.5)
    np.testing.assert_array_equal(fine[::2], labels_a)


@pytest.mark.skipif(not DCIODVFY.exists(), reason="dicom3tools' dciodvfy is not installed")
@pytest.mark.parametrize(
    "syntax", [ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless, JPEGLSLossless]
)
def test_written_ct_passes_dciodvfy(tmp_path: Path, syntax: str) -> None:
    files, _, _ = small_series(tmp_path, shape=(2, 40, 40), transfer_syntax=syntax)
    result = subprocess.run([str(DCIODVFY), str(files[0])], capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert "CTImage" in output
    assert [line for line in output.splitlines() if line.startswith("Error")] == []


@pytest.mark.skipif(not DCIODVFY.exists(), reason="dicom3tools' dciodvfy is not installed")
def test_every_series_of_the_petct_study_passes_dciodvfy(tmp_path: Path) -> None:
    study = write_petct_study(tmp_path, slices=16, rows=16, pixel_spacing=20.0)
    firsts = {path.parent: path for path in sorted(study.files, reverse=True)}
    assert len(firsts) == 6
    for path in firsts.values():
        result = subprocess.run([str(DCIODVFY), str(path)], capture_output=True, text=True)
        errors = [ln for ln in (result.stdout + result.stderr).splitlines() if "Error" in ln]
        assert errors == [], f"{path}: {errors}"


def test_written_headers_carry_patient_and_geometry(tmp_path: Path) -> None:
    files, _, geometry = small_series(
        tmp_path, patient_size_m=1.62, patient_weight_kg=58.5, patient_sex="F", kernel="B31f"
    )
    ds = pydicom.dcmread(files[3])
    assert float(ds.PatientSize) == 1.62 and float(ds.PatientWeight) == 58.5
    assert ds.PatientSex == "F" and ds.ConvolutionKernel == "B31f" and ds.Modality == "CT"
    np.testing.assert_allclose(
        [float(v) for v in ds.ImagePositionPatient], geometry.slice_position(3)
    )
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_petct_study_layout(tmp_path: Path) -> None:
    study = write_petct_study(tmp_path, slices=16, rows=16, pixel_spacing=20.0)
    assert len(study.series) == 6 and study.expected_series_uid in study.series.values()
    modalities = {pydicom.dcmread(p, stop_before_pixels=True).Modality for p in study.files}
    assert modalities == {"CT", "PT"}


def test_command_line_writes_a_loadable_series(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path), "--slices", "16", "--rows", "32"]) == 0
    assert "wrote 16 files" in capsys.readouterr().out
    assert load_ct(tmp_path).volume.shape == (16, 32, 32)


def test_one_writer_writes_pet_with_its_header_and_a_slope_per_slice(tmp_path: Path) -> None:
    """Floating activity is stored with a RescaleSlope per slice, as scanners write it, and
    reads back within half a stored step; the header's units, SUV factor and patient values
    are written, the CT's attributes are not."""
    shape = (3, 8, 8)
    rng = np.random.default_rng(0)
    values = (rng.uniform(0.0, 1.0, shape) * np.array([10.0, 2000.0, 0.5])[:, None, None]).astype(
        np.float32
    )
    header = PetHeader(units="CNTS", philips_suv_factor=2.5e-4, weight_kg=None, sex="F")
    files = write_series(tmp_path, values, axial_geometry(shape, (4.0, 5.0, 5.0)), pet=header)
    slopes = []
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        assert ds.Modality == "PT" and path.name.startswith("PT")
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.128"
        assert ds.Units == "CNTS" and ds.RescaleIntercept == 0 and ds.ImageIndex == k + 1
        factor = ds.private_block(0x7053, PHILIPS_PRIVATE_CREATOR)[0x00].value
        assert float(factor) == 2.5e-4
        assert "PatientWeight" not in ds and ds.PatientSex == "F" and float(ds.PatientSize) == 1.75
        assert "PatientPosition" not in ds and "ConvolutionKernel" not in ds
        slope = float(ds.RescaleSlope)
        np.testing.assert_allclose(ds.pixel_array * slope, values[k], atol=slope / 2 * 1.0001)
        slopes.append(slope)
    assert len(set(slopes)) == 3


def test_one_writer_stores_integer_pet_exactly(tmp_path: Path) -> None:
    activity = np.arange(2 * 4 * 4, dtype=np.int16).reshape(2, 4, 4) * 100
    files = write_series(
        tmp_path, activity, axial_geometry((2, 4, 4), (2.0, 4.0, 4.0)), pet=PetHeader()
    )
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        assert float(ds.RescaleSlope) == 1.0 and ds.RescaleIntercept == 0
        np.testing.assert_array_equal(ds.pixel_array, activity[k])
        assert float(ds.PatientWeight) == 75.0 and ds.DecayCorrection == "START"
