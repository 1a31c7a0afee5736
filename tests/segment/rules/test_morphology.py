"""Mask helpers: slice-wise holes, millimetre-sized steps, bridged slices, the coarse grid."""

import numpy as np
from scipy import ndimage

from habitus.segment.rules.coarse import CoarseGrid
from habitus.segment.rules.morphology import (
    IN_PLANE_8,
    bridge_slices,
    close_2d,
    dilate_2d,
    drop_small_components,
    erode_2d,
    fill_holes_2d,
    largest_per_slice,
    open_2d,
)


def _random_masks(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndimage.binary_opening(rng.random((5, 40, 50)) > 0.45)


def test_fill_holes_is_per_slice() -> None:
    masks = _random_masks()
    expected = np.stack([ndimage.binary_fill_holes(s) for s in masks])
    assert np.array_equal(fill_holes_2d(masks), expected)
    # A ring in one slice is a hole to fill, though in 3D its inside reaches the air above.
    ring = np.zeros((3, 9, 9), dtype=bool)
    ring[1, 2:7, 2:7] = True
    ring[1, 3:6, 3:6] = False
    assert not ndimage.binary_fill_holes(ring)[1, 4, 4]
    assert fill_holes_2d(ring)[1, 4, 4]


def test_holes_open_at_a_corner_are_kept_with_corner_connectivity() -> None:
    masks = _random_masks(1)
    structure = ndimage.generate_binary_structure(2, 2)
    expected = np.stack([ndimage.binary_fill_holes(s, structure=structure) for s in masks])
    assert np.array_equal(fill_holes_2d(masks, background_connectivity=IN_PLANE_8), expected)
    # A one-pixel gap that reaches the outside through a corner only.
    ring = np.zeros((1, 7, 7), dtype=bool)
    ring[0, 1:6, 1:6] = True
    ring[0, 2:5, 2:5] = False
    ring[0, 1, 1] = False
    assert fill_holes_2d(ring)[0, 3, 3]
    assert not fill_holes_2d(ring, background_connectivity=IN_PLANE_8)[0, 3, 3]


def test_largest_part_and_small_parts_of_each_slice() -> None:
    masks = np.zeros((3, 12, 12), dtype=bool)
    masks[0, 1:5, 1:5] = True  # 16 pixels
    masks[0, 7:9, 7:9] = True  # 4
    masks[1, 1:3, 1:3] = True  # 4
    masks[1, 5:11, 5:11] = True  # 36
    masks[1, 11, 11] = True  # touches the 36 only at a corner: its own part in 4-connectivity
    largest = largest_per_slice(masks)
    assert largest[0, 1:5, 1:5].all() and not largest[0, 7:9, 7:9].any()
    assert largest[1, 5:11, 5:11].all() and largest[1, 11, 11] and not largest[1, 1:3, 1:3].any()
    assert not largest[2].any()
    kept = drop_small_components(masks, 5, IN_PLANE_8)
    assert np.array_equal(kept, masks & largest)
    assert not drop_small_components(masks, 5)[1, 11, 11]  # alone, face-connected in 3D


def test_steps_in_millimetres_stay_in_the_slice() -> None:
    point = np.zeros((3, 21, 21), dtype=bool)
    point[1, 10, 10] = True
    grown = dilate_2d(point, 4.0, (1.0, 1.0))
    assert not grown[0].any() and not grown[2].any()
    assert grown[1, 10, 14] and grown[1, 10, 6] and not grown[1, 10, 15]
    # About a disk: the diagonal reach is shorter than the straight one.
    assert not grown[1, 14, 14]
    assert np.array_equal(erode_2d(grown, 4.0, (1.0, 1.0)), point)


def test_dilation_only_into_the_allowed_voxels() -> None:
    seed = np.zeros((1, 1, 10), dtype=bool)
    seed[0, 0, 0] = True
    allowed = np.ones_like(seed)
    allowed[0, 0, 5] = False
    grown = dilate_2d(seed, 20.0, (1.0, 1.0), within=allowed)
    assert grown[0, 0, :5].all() and not grown[0, 0, 5:].any()


def test_opening_drops_thin_strands_and_closing_bridges_gaps() -> None:
    blocks = np.zeros((1, 30, 40), dtype=bool)
    blocks[0, 5:25, 2:15] = True
    blocks[0, 5:25, 17:38] = True  # a 2-pixel gap between two blocks
    blocks[0, 14, 15:17] = True  # a one-pixel strand across it
    opened = open_2d(blocks, 2.0, (1.0, 1.0))
    assert not opened[0, 14, 15:17].any()
    closed = close_2d(blocks, 2.0, (1.0, 1.0))
    assert closed[0, 10, 15:17].all()


def test_coarse_grid_blocks_and_back() -> None:
    grid = CoarseGrid.for_spacing((3.0, 0.7, 0.7), (2, 7, 9))
    assert grid.factor == 2
    assert grid.spacing((3.0, 0.7, 0.7)) == (3.0, 1.4, 1.4)
    fine = np.zeros((2, 7, 9), dtype=bool)
    fine[0, 0, 0] = True
    fine[1, 2:4, 2:4] = True
    assert grid.any(fine)[0, 0, 0] and not grid.majority(fine)[0, 0, 0]
    assert grid.majority(fine)[1, 1, 1]
    back = grid.expand(grid.majority(fine))
    assert back.shape == fine.shape
    assert np.array_equal(back[1, 2:4, 2:4], fine[1, 2:4, 2:4])
    assert CoarseGrid.for_spacing((3.0, 3.0, 3.0), (2, 7, 9)).factor == 1


def test_bridged_slices_fill_short_gaps_only_where_allowed() -> None:
    rod = np.zeros((12, 5, 5), dtype=bool)
    rod[:, 2, 2] = True
    rod[3] = False  # a gap of one slice
    rod[6:8] = False  # two slices
    rod[9:12] = False  # the rod ends: nothing below it to bridge to
    allowed = np.ones_like(rod)
    allowed[3, 2, 2] = False  # not soft tissue there: stays out
    bridged = bridge_slices(rod, allowed, max_gap_mm=6.0, slice_mm=3.0)
    assert not bridged[3, 2, 2]
    assert bridged[6:8, 2, 2].all()
    assert not bridged[9:, 2, 2].any()
    # Only the rod's own column: a gap is bridged in place, not widened.
    assert bridged.sum() == rod.sum() + 2
    # Beyond the reach (6 mm at 3 mm slices: two slices away on each side), no bridge.
    assert not bridge_slices(rod, allowed, max_gap_mm=2.0, slice_mm=3.0)[6:8].any()
