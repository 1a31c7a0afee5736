"""Patch centres: the thin classes are drawn often enough for the loss to learn them."""

import numpy as np
import pytest

from habitus.labels import NUM_LABELS, Tissue
from model_export.dataset import PatchSampler, centre_class_weights
from model_export.training_pairs import IGNORE, LabelledVolume


def _trunk() -> LabelledVolume:
    """A trunk on the 4 mm grid: fat around muscle, a vertebra with a canal of 3 x 3 voxels
    (the spinal canal at 4 mm is 3-4 voxels across), air around it."""
    depth, rows, cols = 16, 64, 64
    j, i = np.ogrid[:rows, :cols]
    labels = np.full((depth, rows, cols), Tissue.BACKGROUND, dtype=np.uint8)
    labels[:, ((j - 32) / 28.0) ** 2 + ((i - 32) / 30.0) ** 2 <= 1.0] = Tissue.SF
    labels[:, ((j - 32) / 22.0) ** 2 + ((i - 32) / 24.0) ** 2 <= 1.0] = Tissue.MUSCLE
    labels[:, 36:44, 28:36] = Tissue.BONE
    labels[:, 39:42, 31:34] = Tissue.CNS
    hu = np.where(labels == Tissue.BACKGROUND, -1000, 40).astype(np.int16)
    return LabelledVolume(hu=hu, labels=labels, spacing=(4.0, 4.0, 4.0), name="trunk")


def test_rarer_classes_weigh_more_and_background_and_absent_classes_nothing() -> None:
    labels = _trunk().labels
    weights = centre_class_weights(labels)
    assert weights.shape == (NUM_LABELS,)
    assert np.isclose(weights.sum(), 1.0)
    assert weights[Tissue.BACKGROUND] == 0.0
    assert weights[Tissue.IO] == weights[Tissue.SKIN] == 0.0  # not in this trunk
    assert weights[Tissue.CNS] > weights[Tissue.BONE] > weights[Tissue.MUSCLE] > 0.0
    padded = np.where(labels == Tissue.CNS, IGNORE, labels).astype(np.uint8)
    assert centre_class_weights(padded)[Tissue.CNS] == 0.0  # padding is no class
    assert not centre_class_weights(np.zeros((2, 2, 2), dtype=np.uint8)).any()


def test_the_canal_is_centred_more_often_than_muscle_a_hundred_times_its_size() -> None:
    volume = _trunk()
    counts = np.bincount(volume.labels.ravel(), minlength=NUM_LABELS)
    assert counts[Tissue.MUSCLE] > 100 * counts[Tissue.CNS]
    # A 1 x 1 x 1 patch is its centre voxel, or its neighbour (jitter), without augmentation.
    sampler = PatchSampler([volume], (1, 1, 1), None, np.random.default_rng(3))
    centres = np.array([int(sampler.sample()[1][0, 0, 0]) for _ in range(2000)])
    on_canal = int((centres == Tissue.CNS).sum())
    on_muscle = int((centres == Tissue.MUSCLE).sum())
    # Drawn uniformly among the classes present, the canal got about a third as many centres
    # as muscle, whose voxels also win every centre drawn anywhere in the body.
    assert on_canal > on_muscle


def test_the_census_counts_every_voxel_of_the_batches_by_class() -> None:
    pytest.importorskip("torch")
    from model_export.census import census
    from model_export.stream import PatchStream
    from tests.model_export.small_stream import small_spec

    spec = small_spec(  # the trunk's patches only, at 4 mm
        seed=1, spacing_mm=(4.0, 4.0, 4.0), phantoms=0, lanes=1, refresh_every=10, folder_share=1.0
    )
    stream = PatchStream(spec, 0, 6, [_trunk()])
    counted = census(stream, 6)
    labels = np.concatenate([stream.batch(step)[1].numpy() for step in range(6)])
    expected = np.bincount(labels[labels != IGNORE], minlength=NUM_LABELS)
    assert counted.voxels == tuple(int(n) for n in expected)
    assert counted.padded == int((labels == IGNORE).sum())
    assert counted.voxels[Tissue.CNS] > 0
    assert np.isclose(sum(counted.shares().values()), 1.0)
    assert counted.batches_without[Tissue.IO] == 6  # the trunk has no organs
    without = counted.to_dict()["batches_without"]
    assert isinstance(without, dict) and without["io"] == 6
