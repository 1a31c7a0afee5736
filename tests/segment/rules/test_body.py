"""Body outline: the table goes, the trunk stays, arms lying beside it are limbs."""

import numpy as np

from habitus.segment.rules.body import body_masks
from habitus.segment.rules.skin import skin_mask

from .shapes import SPACING, trunk_with_arms


def test_table_is_not_body_and_arms_apart_are_limbs() -> None:
    hu, trunk, arms, table = trunk_with_arms()
    masks = body_masks(hu, SPACING)
    assert not (masks.body & table).any()
    assert (masks.torso & trunk).sum() / trunk.sum() > 0.99
    assert (masks.limbs & arms).sum() / arms.sum() > 0.99
    assert not (masks.torso & arms).any()


def test_arm_against_the_trunk_is_cut_at_the_neck() -> None:
    hu, trunk, arms, _ = trunk_with_arms(arm_gap_mm=4.0, neck_mm=16.0)
    masks = body_masks(hu, SPACING)
    left_arm = arms & (np.arange(hu.shape[2]) > hu.shape[2] // 2)[np.newaxis, np.newaxis, :]
    assert (masks.limbs & left_arm).sum() / left_arm.sum() > 0.9
    assert (masks.torso & trunk).sum() / trunk.sum() > 0.97


def test_body_holes_are_filled_per_slice() -> None:
    hu, trunk, _, _ = trunk_with_arms()
    hu[:, 70:90, 100:120] = -1000  # an air pocket inside the trunk, like the lungs
    masks = body_masks(hu, SPACING)
    assert masks.body[:, 80, 110].all()


def test_skin_is_a_rim_one_pixel_deep_and_not_on_cut_faces() -> None:
    hu, _, _, _ = trunk_with_arms()
    body = body_masks(hu, SPACING).body
    skin = skin_mask(body, SPACING)
    assert (skin <= body).all()
    # 2 mm of skin on 2 mm pixels: one pixel at each edge of the trunk and of both arms.
    row = skin[5, hu.shape[1] // 2].astype(int)
    starts = np.flatnonzero(np.diff(np.concatenate([[0], row])) == 1)
    assert len(starts) == 6
    assert row.sum() == 6
    # The first and last slices are cuts through the body, not its surface.
    assert np.array_equal(skin[0], skin[5])
