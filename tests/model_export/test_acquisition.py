"""Re-acquisition of labelled real scans: labels move with the image, a seed fixes the result."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from habitus.labels import Tissue
from model_export import acquisition
from model_export.acquisition import Reacquisition, reacquire
from model_export.training_pairs import LabelledVolume

HU_OF = {
    Tissue.BACKGROUND: -1024,
    Tissue.SF: -100,
    Tissue.MUSCLE: 50,
    Tissue.IO: 200,
    Tissue.BONE: 900,
}


def _volume() -> LabelledVolume:
    """A body (fat around muscle) with organs and a bone off its centre: no symmetry."""
    depth, rows, cols = 24, 72, 80
    j, i = np.ogrid[:rows, :cols]
    labels = np.full((depth, rows, cols), Tissue.BACKGROUND, dtype=np.uint8)
    body = ((j - 36) / 30.0) ** 2 + ((i - 40) / 36.0) ** 2 <= 1.0
    labels[:, body] = Tissue.SF
    inner = ((j - 36) / 24.0) ** 2 + ((i - 40) / 30.0) ** 2 <= 1.0
    labels[:, inner] = Tissue.MUSCLE
    labels[4:20, 20:36, 18:40] = Tissue.IO
    labels[2:, (j - 46) ** 2 + (i - 52) ** 2 <= 36] = Tissue.BONE
    lut = np.zeros(256, dtype=np.int16)
    for tissue, hu in HU_OF.items():
        lut[tissue] = hu
    return LabelledVolume(hu=lut[labels], labels=labels, spacing=(2.0, 1.0, 1.0), name="case")


def _agreement(volume: LabelledVolume, tolerance_hu: float) -> float:
    """The lowest share, over the labels, of voxels well inside a label that have its HU."""
    shares = []
    for tissue, hu in HU_OF.items():
        mask = volume.labels == tissue
        inside = ndimage.binary_erosion(mask, iterations=2, border_value=1)
        if inside.sum() >= 20:
            near = np.abs(volume.hu[inside].astype(np.float32) - hu) <= tolerance_hu
            shares.append(float(near.mean()))
    assert shares
    return min(shares)


GEOMETRIC = [
    ("resample", lambda v, r: acquisition.resample(v, r, (2.0, 3.0), (3.0, 5.0))),
    ("rotate", lambda v, r: acquisition.rotate(v, r, max_deg=30.0)),
    ("truncate_fov", acquisition.truncate_fov),
    ("crop_z", acquisition.crop_z),
]
INTENSITY = [
    ("kernel", acquisition.kernel),
    ("noise", lambda v, r: acquisition.noise(v, r, (20.0, 25.0))),
]


@pytest.mark.parametrize("name, change", GEOMETRIC, ids=[n for n, _ in GEOMETRIC])
def test_labels_move_with_the_image(name, change):
    original = _volume()
    for seed in range(4):
        moved = change(original, np.random.default_rng(seed))
        assert moved.hu.shape == moved.labels.shape
        assert _agreement(moved, tolerance_hu=20.0) > 0.99, (name, seed)


def test_the_checks_see_labels_left_behind():
    """Rotating the image alone is caught by the agreement check used above."""
    original = _volume()
    turned = acquisition.rotate(original, np.random.default_rng(0), max_deg=30.0)
    stale = dataclasses.replace(turned, labels=original.labels)
    assert _agreement(stale, tolerance_hu=20.0) < 0.95


@pytest.mark.parametrize("name, change", INTENSITY, ids=[n for n, _ in INTENSITY])
def test_intensity_changes_keep_the_labels(name, change):
    original = _volume()
    changed = change(original, np.random.default_rng(3))
    assert np.array_equal(changed.labels, original.labels)
    assert not np.array_equal(changed.hu, original.hu)
    assert _agreement(changed, tolerance_hu=120.0) > 0.95


def test_resampling_coarsens_the_grid_and_never_refines_it():
    original = _volume()
    spacings = [acquisition.resample(original, np.random.default_rng(s)).spacing for s in range(20)]
    assert all(sp[0] >= 2.0 - 1e-6 and sp[1] >= 1.0 - 1e-6 for sp in spacings)
    assert len({round(sp[0], 3) for sp in spacings}) > 5  # slices 2-5 mm
    assert max(sp[1] for sp in spacings) > 2.0  # pixels up to 3 mm
    for sp in spacings:
        assert sp[1] == pytest.approx(sp[2], rel=0.05)


def test_a_truncated_field_of_view_is_air_and_background_outside():
    original = _volume()
    for seed in range(6):
        cut = acquisition.truncate_fov(original, np.random.default_rng(seed))
        lost = (original.labels != Tissue.BACKGROUND) & (cut.labels == Tissue.BACKGROUND)
        assert lost.any()  # the body is cut
        assert (cut.hu[lost] == -1024).all()
        kept = cut.labels != Tissue.BACKGROUND
        assert np.array_equal(cut.hu[kept], original.hu[kept])


def test_a_crop_keeps_contiguous_slices_that_start_and_stop_anywhere():
    original = _volume()
    starts, stops = set(), set()
    for seed in range(30):
        crop = acquisition.crop_z(original, np.random.default_rng(seed))
        depth = crop.hu.shape[0]
        assert depth >= 4
        first = next(
            s for s in range(25 - depth) if np.array_equal(original.hu[s : s + depth], crop.hu)
        )
        starts.add(first)
        stops.add(first + depth)
    assert len(starts) > 5 and len(stops) > 5


ALL = [*GEOMETRIC, *INTENSITY, ("reacquire", reacquire)]


@pytest.mark.parametrize("name, change", ALL, ids=[n for n, _ in ALL])
def test_a_seed_gives_the_same_result_and_seeds_differ(name, change):
    original = _volume()
    first = change(original, np.random.default_rng(11))
    again = change(original, np.random.default_rng(11))
    assert np.array_equal(first.hu, again.hu) and np.array_equal(first.labels, again.labels)
    assert first.spacing == again.spacing
    others = [change(original, np.random.default_rng(s)) for s in range(12, 16)]
    assert any(o.hu.shape != first.hu.shape or not np.array_equal(o.hu, first.hu) for o in others)


def test_reacquisition_keeps_the_class_of_every_labelled_voxel():
    original = _volume()
    everything = Reacquisition(resample_p=1, kernel_p=0, fov_p=1, crop_z_p=1, rotate_p=1)
    for seed in range(4):
        version = reacquire(original, np.random.default_rng(seed), everything)
        assert set(np.unique(version.labels)) <= set(np.unique(original.labels))
        assert _agreement(version, tolerance_hu=120.0) > 0.95
