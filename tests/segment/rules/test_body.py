"""Body outline: the table goes, the trunk stays, arms lying beside it are limbs; the
measurements' body parts: trunk, arms and legs of a label map."""

import numpy as np

from habitus.segment.rules.body import (
    arm_bones_apart,
    body_masks,
    cut_arms_at_bones,
    find_body_parts,
)
from habitus.segment.rules.skin import skin_mask

from .shapes import SPACING, trunk_with_arms


def test_table_is_not_body_and_arms_apart_are_limbs() -> None:
    hu, trunk, arms, table = trunk_with_arms()
    masks = body_masks(hu, SPACING)
    assert not (masks.body & table).any()
    assert (masks.trunk & trunk).sum() / trunk.sum() > 0.99
    assert (masks.limbs & arms).sum() / arms.sum() > 0.99
    assert not (masks.trunk & arms).any()


def test_arm_against_the_trunk_is_cut_at_the_neck() -> None:
    hu, trunk, arms, _ = trunk_with_arms(arm_gap_mm=4.0, neck_mm=16.0)
    masks = body_masks(hu, SPACING)
    left_arm = arms & (np.arange(hu.shape[2]) > hu.shape[2] // 2)[np.newaxis, np.newaxis, :]
    assert (masks.limbs & left_arm).sum() / left_arm.sum() > 0.9
    assert (masks.trunk & trunk).sum() / trunk.sum() > 0.97


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


# The measurements' body parts, on pooled canonical masks of 3 mm pixels.
POOLED = (3.0, 3.0)


def _disc(shape: tuple[int, int], row: float, col: float, radius: float) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return np.asarray((rows - row) ** 2 + (cols - col) ** 2 <= radius**2)


def _trunk_with_arm(arm_gap_px: int, slices: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A trunk 240 mm across and a right arm 60 mm across beside it, ``arm_gap_px`` apart
    (negative: overlapping)."""
    shape = (100, 140)
    trunk = _disc(shape, 50, 70, 40)
    arm = _disc(shape, 50, 70 - 40 - arm_gap_px - 10, 10) & ~trunk
    return np.repeat((trunk | arm)[np.newaxis], slices, axis=0), np.repeat(
        arm[np.newaxis], slices, axis=0
    )


def test_legs_below_the_trunk_and_an_arm_apart() -> None:
    body, arm = _trunk_with_arm(arm_gap_px=3, slices=20)
    legs = np.zeros_like(body[0])
    legs |= _disc(legs.shape, 50, 45, 16)  # 48 mm radius: 72 cm2, 150 mm apart
    legs |= _disc(legs.shape, 50, 95, 16)
    body[:8] = legs
    arm[:8] = False
    parts = find_body_parts(body, POOLED)
    assert parts.leg_split == 8
    assert np.array_equal(parts.legs[:8], body[:8]) and not parts.legs[8:].any()
    assert not parts.trunk[:8].any()
    assert np.array_equal(parts.arms, arm)
    assert np.array_equal(parts.trunk[8:], body[8:] & ~arm[8:])


def test_an_arm_on_a_thin_bridge_is_cut_off_and_one_broadly_against_the_flank_is_not() -> None:
    body, arm = _trunk_with_arm(arm_gap_px=1)
    body[:, 48:52, 19:31] = True  # a bridge 12 mm thick: the opening cuts it
    parts = find_body_parts(body, POOLED)
    assert (parts.arms & arm).sum() / arm.sum() > 0.9
    broad, broad_arm = _trunk_with_arm(arm_gap_px=-4)
    parts = find_body_parts(broad, POOLED)
    assert not parts.arms.any() and (parts.trunk & broad_arm).sum() == broad_arm.sum()


def test_arm_against_the_flank_is_cut_at_the_skin_fold_where_its_bone_is() -> None:
    body, arm = _trunk_with_arm(arm_gap_px=-4)
    parts = find_body_parts(body, POOLED)
    bone = np.zeros_like(body)
    bone[:, 47:54, 23:30] = True  # the humerus, in the middle of the arm
    bone[2] = False  # a slice where it is not seen keeps the arm in the trunk
    cut = cut_arms_at_bones(parts, bone, POOLED)
    seen = np.arange(body.shape[0]) != 2
    assert (cut.arms[seen] & arm[seen]).sum() / arm[seen].sum() > 0.9
    assert not cut.arms[2].any()
    trunk = body & ~arm
    assert (cut.trunk[seen] & trunk[seen]).sum() / trunk[seen].sum() > 0.97
    assert np.array_equal(cut.trunk | cut.arms, parts.trunk | parts.arms)


def test_arm_bone_seen_apart_is_followed_into_the_trunk_far_from_the_centre_only() -> None:
    body, _ = _trunk_with_arm(arm_gap_px=-4)
    body[:3] = _trunk_with_arm(arm_gap_px=3, slices=3)[0]  # the arm apart in three slices
    parts = find_body_parts(body, POOLED)
    assert parts.arms[:3].any() and not parts.arms[3:].any()
    humerus = np.zeros_like(body)
    humerus[:, 49:52, 18:22] = True  # 150 mm to the side of the centre
    rib = np.zeros_like(body)
    rib[:, 49:52, 46:50] = True  # 66 mm to the side: a rib, never an arm bone
    rib[3, 49:52, 22:46] = True  # joined to the humerus where the arm lies against the flank
    centre = np.full(body.shape[0], 70.0)
    followed = arm_bones_apart(humerus, parts, centre, POOLED)
    assert np.array_equal(followed, humerus)
    assert not arm_bones_apart(humerus | rib, parts, centre, POOLED).any()
    assert not arm_bones_apart(humerus & ~parts.arms, parts, centre, POOLED).any()
