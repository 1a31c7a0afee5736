"""The whole-body phantoms' anatomy as a real body has it, and the parts they name.

Each check here is one a real CT meets and an earlier phantom did not: the structures whose
label does not say what they are (the psoas, the crura, the iliacus, the kidneys, the
thoracic cavity) are named by the painter itself, with the vertebral level of every slice.
Seeds 1-3, chest to pelvis, at 3 mm.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from habitus.labels import Tissue
from habitus.phantoms.generator import Phantom, make_phantom
from habitus.phantoms.materials import Material

SEEDS = (1, 2, 3)
SPACING = (3.0, 3.0, 3.0)
PARTS = {
    "psoas": Tissue.MUSCLE,
    "crura": Tissue.MUSCLE,
    "iliacus": Tissue.MUSCLE,
    "kidneys": Tissue.IO,
    "femora": Tissue.BONE,
    "ribs": Tissue.BONE,
}
# Distance from a femur's voxels to the nearest other bone: the joint space (a voxel at least,
# 3 mm here) and no more than the cartilage and a little fluid (the head sits in its socket).
JOINT_MIN_MM, JOINT_MAX_MM = 4.0, 8.0
MUSCLE_BEHIND_KIDNEY_MM = 10.0  # the quadratus lumborum at least
ILIUM_BODY_MIN_MM = 12.0  # the level finder's THICK_RADIUS_MM: no rib is this thick
LATERAL_OF_SACRUM_MM = 60.0  # the sacrum and spine lie nearer the midline
RIB_FALL_MIN_MM = 6.0  # a lowest rib's fall over 15 mm out from the column (two slices)
COLUMN_MM = 50.0  # a rib within this of the midline starts at the column
HEART_IN_THORAX = 0.9  # the heart sits on the diaphragm: all but its base above the domes


@pytest.fixture(scope="module", params=SEEDS)
def phantom(request: pytest.FixtureRequest) -> Phantom:
    return make_phantom(request.param, spacing_mm=SPACING, scan_range="chest_abdomen_pelvis")


def test_the_painter_names_the_parts_whose_label_does_not_say_what_they_are(
    phantom: Phantom,
) -> None:
    assert set(phantom.parts) == {*PARTS, "thoracic_cavity"}
    for name, mask in phantom.parts.items():
        assert mask.shape == phantom.labels.shape and mask.dtype == bool, name
        assert mask.sum() > 20, name
    for name, tissue in PARTS.items():
        assert np.all(phantom.labels[phantom.parts[name]] == tissue), name
    # The thoracic cavity holds the lungs: mostly background (air) in its label map.
    cavity = phantom.labels[phantom.parts["thoracic_cavity"]]
    assert float((cavity == Tissue.BACKGROUND).mean()) > 0.5


def test_every_slice_has_its_vertebral_level_in_volume_order(phantom: Phantom) -> None:
    level = phantom.vertebra
    assert level.shape == (phantom.labels.shape[0],)
    assert np.all(np.diff(level) <= 0.0)  # slices run foot to head, levels head to foot
    z = phantom.volume.geometry.z_of_slice
    t12_l1 = phantom.landmarks_z_mm["t12_l1"]
    above = [i for i in range(len(level)) if z(i) > t12_l1 + 2.0]
    below = [i for i in range(len(level)) if z(i) < t12_l1 - 2.0]
    assert np.all(level[above] < 19.0) and np.all(level[below] > 19.0)
    # The psoas runs from L1 down: none of it beside a thoracic vertebra.
    rows = np.nonzero(phantom.parts["psoas"].any(axis=(1, 2)))[0]
    assert level[rows].min() >= 19.0


def test_each_femur_lies_in_its_acetabulum_apart_from_the_hip_bone(phantom: Phantom) -> None:
    """A joint space of cartilage (a few mm, at least a voxel) parts every femoral head from its
    acetabulum on CT; the femur was once painted one piece with the hip bone."""
    femora = phantom.parts["femora"]
    other_bone = (phantom.labels == Tissue.BONE) & ~femora
    spacing = phantom.volume.geometry.spacing
    to_other = ndimage.distance_transform_edt(~other_bone, sampling=spacing)
    geometry = phantom.volume.geometry
    x = geometry.origin[0] + np.arange(femora.shape[2]) * spacing[2]  # 0 at the midline
    for side in (x < 0.0, x > 0.0):
        gap = float(to_other[:, :, side][femora[:, :, side]].min())
        assert JOINT_MIN_MM <= gap <= JOINT_MAX_MM, gap
    assert not (ndimage.binary_dilation(femora, np.ones((3, 3, 3), bool)) & other_bone).any()


def test_the_hip_bone_is_thick_around_the_acetabulum(phantom: Phantom) -> None:
    """The body of the ilium above and inside the socket is bone thicker than any rib (a
    ball of ILIUM_BODY_MIN_MM fits in it), as the vertebral-level finder expects of a hip
    bone; a 4 mm shell round the joint space once took its place."""
    bone = (phantom.labels == Tissue.BONE) & ~phantom.parts["femora"]
    spacing = phantom.volume.geometry.spacing
    depth = ndimage.distance_transform_edt(bone, sampling=spacing)
    x = phantom.volume.geometry.origin[0] + np.arange(bone.shape[2]) * spacing[2]
    for side in (x < -LATERAL_OF_SACRUM_MM, x > LATERAL_OF_SACRUM_MM):
        assert float(depth[:, :, side].max()) >= ILIUM_BODY_MIN_MM


def test_the_liver_lies_below_the_diaphragm_and_the_heart_above_it(phantom: Phantom) -> None:
    """No liver in the thorax: it was once painted over the heart above the right dome
    (13,584 voxels at 3 x 1.5 x 1.5 mm on seed 3)."""
    thorax = phantom.parts["thoracic_cavity"]
    liver = phantom.materials == Material.LIVER
    heart = phantom.materials == Material.HEART
    assert liver.sum() > 1000 and heart.sum() > 1000
    assert int((liver & thorax).sum()) == 0
    assert float((heart & thorax).sum() / heart.sum()) > HEART_IN_THORAX


def test_the_back_muscles_lie_behind_each_kidney_and_its_fat(phantom: Phantom) -> None:
    """A kidney's perirenal fat fills its fossa in front of the quadratus lumborum; the fat
    was once painted over the back muscles down to the subcutaneous fat (0-9 mm of muscle
    left behind the kidneys of seeds 1-5, now 12-27 mm). Through the middle half of each
    kidney, the column behind its centre keeps at least MUSCLE_BEHIND_KIDNEY_MM of muscle."""
    kidneys, labels = phantom.parts["kidneys"], phantom.labels
    row_mm = phantom.volume.geometry.spacing[1]
    parts, n = ndimage.label(kidneys)
    sizes = ndimage.sum(kidneys, parts, range(1, n + 1))
    for k in np.argsort(sizes)[::-1][:2] + 1:
        kidney = parts == k
        slices = np.flatnonzero(kidney.any(axis=(1, 2)))
        middle = slices[len(slices) // 4 : 3 * len(slices) // 4 + 1]
        for z in middle:
            x = int(round(np.nonzero(kidney[z])[1].mean()))
            rows = np.flatnonzero(kidney[z, :, x])
            if not rows.size:
                continue
            behind = labels[z, rows.max() + 1 :, x]  # rows run to the back
            outside = np.flatnonzero((behind == Tissue.SKIN) | (behind == Tissue.BACKGROUND))
            behind = behind[: outside[0] if outside.size else behind.size]
            assert (behind == Tissue.MUSCLE).sum() * row_mm >= MUSCLE_BEHIND_KIDNEY_MM, z


def test_the_lowest_ribs_fall_from_their_heads(phantom: Phantom) -> None:
    """A lower rib's head meets its vertebra higher than its shaft beside the body: the
    12th rib leaves the column at the level of T12's body and runs down and out. The ribs
    once ran level from the spine to their angle, which put the level finder's 12th rib head
    on T11. Here the lowest rib that reaches the column (within COLUMN_MM of the midline)
    falls at least RIB_FALL_MIN_MM over 15 mm out from its innermost point."""
    ribs = phantom.parts["ribs"]
    geometry = phantom.volume.geometry
    dz, _, dx = geometry.spacing
    parts, _ = ndimage.label(ribs, np.ones((3, 3, 3), bool))
    k, _, i = np.nonzero(ribs)
    label = parts[ribs]
    x = geometry.origin[0] + i * dx
    for side in (x < 0.0, x > 0.0):
        reaching = np.unique(label[side & (np.abs(x) <= COLUMN_MM)])
        lowest = min(reaching, key=lambda r: int(k[side & (label == r)].min()))
        rib = side & (label == lowest)
        reach = np.abs(x[rib])
        inner = reach <= reach.min() + 4.0
        outer = (reach >= reach.min() + 14.0) & (reach <= reach.min() + 20.0)
        fall = (k[rib][inner].max() - k[rib][outer].max()) * dz
        assert fall >= RIB_FALL_MIN_MM, fall
