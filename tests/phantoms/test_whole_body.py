"""The phantom generator: exact labels consistent with attenuation, reproducible by seed."""

import numpy as np
import pytest

from habitus.labels import BONE_HU_MIN, FAT_HU, MUSCLE_HU, Tissue
from habitus.phantoms import make_phantom, random_acquisition, random_spec, render

COARSE = (5.0, 5.0, 5.0)


@pytest.fixture(scope="module")
def torso():
    return make_phantom(11, spacing_mm=COARSE, scan_range="chest_abdomen_pelvis")


def _core(labels, tissue):
    """Voxels of ``tissue`` whose six neighbours share it (away from partial volume)."""
    m = labels == tissue
    core = m.copy()
    for axis in range(3):
        for shift in (1, -1):
            core &= np.roll(m, shift, axis=axis)
    return core


def test_labels_are_tissue_values_and_every_class_is_drawn(torso):
    values = set(np.unique(torso.labels).tolist())
    assert values <= {int(t) for t in Tissue}
    assert values == {int(t) for t in Tissue}, "a torso scan shows all eight labels"
    assert torso.labels.shape == torso.volume.hu.shape
    assert torso.labels.dtype == np.uint8 and torso.volume.hu.dtype == np.int16


@pytest.mark.parametrize(
    ("tissue", "low", "high"),
    [
        (Tissue.MUSCLE, MUSCLE_HU[0], MUSCLE_HU[1]),
        (Tissue.SF, FAT_HU[0], FAT_HU[1]),
        (Tissue.AVF, FAT_HU[0], FAT_HU[1] + 30),  # bowel and vessels blur into it
        (Tissue.CNS, -20.0, 80.0),
    ],
)
def test_mean_attenuation_of_each_class_lies_in_its_range(torso, tissue, low, high):
    mean = float(torso.volume.hu[_core(torso.labels, tissue)].mean())
    assert low <= mean <= high, f"{tissue.name} mean {mean:.0f} HU outside [{low}, {high}]"


def test_bone_is_dense_and_lungs_are_air(torso):
    hu, labels = torso.volume.hu, torso.labels
    assert float(np.median(hu[_core(labels, Tissue.BONE)])) > BONE_HU_MIN * 0.6
    # Lungs are background but not outside air: lung attenuation within the background.
    lung = (labels == Tissue.BACKGROUND) & (hu > -950) & (hu < -500)
    assert lung.sum() > 50


def test_same_seed_same_phantom_other_seed_other_phantom():
    a = make_phantom(5, spacing_mm=(8.0, 8.0, 8.0), scan_range="upper_abdomen")
    b = make_phantom(5, spacing_mm=(8.0, 8.0, 8.0), scan_range="upper_abdomen")
    c = make_phantom(6, spacing_mm=(8.0, 8.0, 8.0), scan_range="upper_abdomen")
    assert np.array_equal(a.volume.hu, b.volume.hu)
    assert np.array_equal(a.labels, b.labels)
    assert a.volume.geometry == b.volume.geometry
    assert a.labels.shape != c.labels.shape or not np.array_equal(a.labels, c.labels)


def test_fat_grows_with_bmi():
    spec = random_spec(21)
    acq = random_acquisition(21, spacing_mm=(8.0, 8.0, 8.0), scan_range="upper_abdomen")
    lean = render(type(spec)(**{**spec.__dict__, "bmi": 17.0}), acq).labels
    obese = render(type(spec)(**{**spec.__dict__, "bmi": 38.0}), acq).labels
    for tissue in (Tissue.SF, Tissue.AVF):
        assert (obese == tissue).sum() > 1.5 * (lean == tissue).sum(), tissue.name


def test_geometry_runs_foot_to_head_and_spacing_is_kept(torso):
    g = torso.volume.geometry
    assert g.spacing == COARSE
    assert g.z_of_slice(torso.volume.shape[0] - 1) > g.z_of_slice(0)  # slice index to the head
    # The head end of a torso scan shows lungs, the foot end does not.
    top, bottom = torso.labels[-5:], torso.labels[:5]
    assert (top == Tissue.BONE).any() and (bottom == Tissue.BONE).any()


def test_thin_slices_blur_less_than_thick_ones():
    spec = random_spec(8)
    base = random_acquisition(8, spacing_mm=(2.0, 8.0, 8.0), scan_range="upper_abdomen")
    thin = render(spec, type(base)(**{**base.__dict__, "slice_thickness_mm": 1.0, "noise_hu": 0.0}))
    thick = render(
        spec, type(base)(**{**base.__dict__, "slice_thickness_mm": 5.0, "noise_hu": 0.0})
    )
    assert np.array_equal(thin.labels, thick.labels)  # labels are exact, blur is image only
    grad_thin = np.abs(np.diff(thin.volume.hu.astype(float), axis=0)).mean()
    grad_thick = np.abs(np.diff(thick.volume.hu.astype(float), axis=0)).mean()
    assert grad_thick < grad_thin
