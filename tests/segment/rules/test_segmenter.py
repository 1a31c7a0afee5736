"""The rule-based segmenter on the synthetic torso, whose labels are exact."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from habitus.errors import InputRefused
from habitus.labels import Tissue
from habitus.phantoms.torso import synthetic_torso
from habitus.phantoms.write_dicom import CORONAL_DIRECTION, axial_geometry
from habitus.segment.base import Segmenter
from habitus.segment.rules import RuleSegmenter
from habitus.volume import CTVolume, Geometry

SHAPE = (64, 128, 128)
SPACING = (2.5, 3.0, 3.0)

# Lower bounds on Dice against the phantom's exact labels (its skin is one voxel here).
MIN_DICE = {
    Tissue.BACKGROUND: 0.99,
    Tissue.SKIN: 0.90,
    Tissue.BONE: 0.95,
    Tissue.MUSCLE: 0.95,
    Tissue.AVF: 0.90,
    Tissue.SF: 0.90,
    Tissue.IO: 0.93,
    Tissue.CNS: 0.95,
}


@pytest.fixture(scope="module")
def phantom() -> tuple[CTVolume, NDArray[np.uint8]]:
    hu, labels = synthetic_torso(SHAPE, SPACING)
    return CTVolume(hu=hu, geometry=axial_geometry(SHAPE, SPACING)), labels


@pytest.fixture(scope="module")
def segmented(phantom: tuple[CTVolume, NDArray[np.uint8]]) -> NDArray[np.uint8]:
    return RuleSegmenter().segment(phantom[0])


def _dice(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_it_is_a_segmenter_that_says_what_it_is() -> None:
    segmenter: Segmenter = RuleSegmenter()
    info = segmenter.info
    assert info.model_id == "habitus-rules"
    assert info.kind == "rules"
    assert info.version
    assert "HU" in info.description


def test_labels_cover_the_input_grid_with_tissue_values(
    phantom: tuple[CTVolume, NDArray[np.uint8]], segmented: NDArray[np.uint8]
) -> None:
    assert segmented.shape == phantom[0].hu.shape
    assert segmented.dtype == np.uint8
    assert set(np.unique(segmented)) <= {int(t) for t in Tissue}


@pytest.mark.parametrize("tissue", list(Tissue), ids=lambda t: t.name)
def test_each_class_matches_the_phantom(
    tissue: Tissue, phantom: tuple[CTVolume, NDArray[np.uint8]], segmented: NDArray[np.uint8]
) -> None:
    expected = phantom[1]
    assert _dice(segmented == tissue, expected == tissue) >= MIN_DICE[tissue]


def test_table_lungs_and_air_are_background(
    phantom: tuple[CTVolume, NDArray[np.uint8]], segmented: NDArray[np.uint8]
) -> None:
    background = phantom[1] == Tissue.BACKGROUND
    # Nearly all the phantom's background (air, table plate, lungs) stays background.
    assert (segmented[background] == Tissue.BACKGROUND).mean() > 0.995


def test_head_first_or_feet_first_order_gives_the_same_labels(
    phantom: tuple[CTVolume, NDArray[np.uint8]], segmented: NDArray[np.uint8]
) -> None:
    volume = phantom[0]
    g = volume.geometry
    top = g.slice_position(volume.shape[0] - 1)
    reversed_geometry = Geometry(
        spacing=g.spacing,
        origin=(float(top[0]), float(top[1]), float(top[2])),
        direction=((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0)),
    )
    reversed_volume = CTVolume(hu=np.ascontiguousarray(volume.hu[::-1]), geometry=reversed_geometry)
    labels = RuleSegmenter().segment(reversed_volume)
    assert np.array_equal(labels[::-1], segmented)


def test_a_coronal_stack_gives_the_same_labels(
    phantom: tuple[CTVolume, NDArray[np.uint8]], segmented: NDArray[np.uint8]
) -> None:
    # The same voxels stored as coronal slices: (front to back, head to feet, right to left).
    hu = np.ascontiguousarray(np.transpose(phantom[0].hu, (1, 0, 2))[:, ::-1, :])
    spacing = (SPACING[1], SPACING[0], SPACING[2])
    coronal = CTVolume(
        hu=hu, geometry=Geometry(spacing=spacing, origin=(0, 0, 0), direction=CORONAL_DIRECTION)
    )
    labels = RuleSegmenter().segment(coronal)
    assert np.array_equal(np.transpose(labels[:, ::-1, :], (1, 0, 2)), segmented)


def test_progress_rises_to_one() -> None:
    hu, _ = synthetic_torso((12, 64, 64), (5.0, 6.0, 6.0))
    volume = CTVolume(hu=hu, geometry=axial_geometry(hu.shape, (5.0, 6.0, 6.0)))
    seen: list[float] = []
    RuleSegmenter().segment(volume, progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert len(seen) >= 3


def test_a_volume_of_air_is_all_background() -> None:
    hu = np.full((4, 32, 32), -1000, dtype=np.int16)
    volume = CTVolume(hu=hu, geometry=axial_geometry(hu.shape, (3.0, 2.0, 2.0)))
    assert not RuleSegmenter().segment(volume).any()


def test_a_flat_array_is_refused() -> None:
    hu = np.zeros((32, 32), dtype=np.int16)
    volume = CTVolume(hu=hu, geometry=axial_geometry((1, 32, 32), (3.0, 2.0, 2.0)))
    with pytest.raises(InputRefused, match="3D"):
        RuleSegmenter().segment(volume)
