"""Overlap figures and the real-scan mapping helpers of the evaluation."""

import numpy as np

from habitus.volume import Geometry
from model_export.evaluate import segment_canonical
from model_export.overlap import coverage, overlap, per_class
from model_export.real_cases import below_diaphragm


def test_dice_sensitivity_precision_of_two_masks():
    predicted = np.zeros((1, 4, 4), dtype=bool)
    reference = np.zeros_like(predicted)
    predicted[0, :2] = True  # 8 voxels
    reference[0, 1:] = True  # 12 voxels, 4 shared
    o = overlap(predicted, reference)
    assert o.dice == 2 * 4 / 20
    assert o.sensitivity == 4 / 12 and o.precision == 4 / 8
    assert overlap(np.zeros_like(predicted), np.zeros_like(reference)).dice is None


def test_per_class_matches_mask_overlaps():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(3, 5, 5)).astype(np.uint8)
    b = rng.integers(0, 4, size=(3, 5, 5)).astype(np.uint8)
    scores = per_class(a, b, [1, 2, 3])
    for c in (1, 2, 3):
        assert scores[c] == overlap(a == c, b == c)
    assert coverage(a, b == 2, 2) == np.count_nonzero(a[b == 2] == 2) / np.count_nonzero(b == 2)


def test_below_the_diaphragm_is_under_the_lowest_lung_voxel():
    lungs = np.zeros((10, 20, 20), dtype=bool)
    lungs[6:, 5:10, 5:10] = True  # lung bases at slice 6 (slices run to the head)
    below = below_diaphragm(lungs, (3.0, 3.0, 3.0))
    assert below[5, 7, 7] and not below[6, 7, 7]
    assert below[9, 19, 19]  # far from any lung: the whole column is abdomen


class _Echo:
    """Labels each voxel with 1 where it lies in the left half of the image (+x)."""

    def segment(self, volume, progress=None):
        labels = np.zeros(volume.shape, dtype=np.uint8)
        labels[:, :, volume.shape[2] // 2 :] = 1
        return labels


def test_segmenting_in_canonical_orientation_returns_labels_in_the_input_order():
    from habitus.volume import CTVolume

    hu = np.zeros((2, 4, 6), dtype=np.int16)
    flipped = Geometry(
        spacing=(1.0, 1.0, 1.0),
        origin=(0.0, 0.0, 0.0),
        direction=((0.0, 0.0, -1.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0)),  # i runs to -x
    )
    labels = segment_canonical(_Echo(), CTVolume(hu=hu, geometry=flipped))
    # In the input's order the patient's left (+x) is the low column indices.
    assert labels[0, 0, 0] == 1 and labels[0, 0, -1] == 0
