"""Landmarks on a synthetic torso with known anatomy, and absent when the scan is cropped."""

from __future__ import annotations

import numpy as np
import pytest

from habitus.anatomy import Anatomy, Landmark, find_anatomy
from habitus.phantoms.landmark_phantom import Phantom, build_phantom

TOLERANCE_MM = 6.0
TORSO_TOP_TOLERANCE_MM = 25.0  # the top is read beside the spine, below the rib heads


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    return build_phantom()


@pytest.fixture(scope="module")
def whole(phantom: Phantom) -> dict[bool, Anatomy]:
    """The anatomy of the whole phantom, by slice direction (head-ward or not)."""
    return {head_ward: _anatomy(phantom, head_ward) for head_ward in (True, False)}


def _anatomy(phantom: Phantom, head_ward: bool = True) -> Anatomy:
    labels, volume = phantom.volume(head_ward=head_ward)
    return find_anatomy(labels, volume.geometry)


def _z(mark: Landmark) -> float:
    assert mark.present, mark.reason
    assert mark.z_mm is not None
    return mark.z_mm


def _middle(phantom: Phantom, name: str) -> float:
    lo, hi = phantom.vertebrae[name]
    return (lo + hi) / 2.0


@pytest.mark.parametrize("head_ward", [True, False], ids=["head-ward", "foot-ward"])
def test_landmarks_lie_within_6_mm_of_the_truth(
    phantom: Phantom, whole: dict[bool, Anatomy], head_ward: bool
) -> None:
    anatomy = whole[head_ward]
    marks = anatomy.landmarks
    assert abs(_z(marks.last_rib) - phantom.truth["last_rib"]) <= TOLERANCE_MM
    assert abs(_z(marks.iliac_crest) - phantom.truth["iliac_crest"]) <= TOLERANCE_MM
    assert abs(_z(marks.l3) - _middle(phantom, "L3")) <= TOLERANCE_MM
    assert abs(_z(marks.torso_bottom) - phantom.truth["ischium_bottom"]) <= TOLERANCE_MM
    assert abs(_z(marks.torso_top) - phantom.truth["rib_top"]) <= TORSO_TOP_TOLERANCE_MM
    assert marks.findings == []


@pytest.mark.parametrize("head_ward", [True, False], ids=["head-ward", "foot-ward"])
def test_slice_indices_point_at_the_reported_z(
    phantom: Phantom, whole: dict[bool, Anatomy], head_ward: bool
) -> None:
    _, volume = phantom.volume(head_ward=head_ward)
    marks = whole[head_ward].landmarks
    for mark in (marks.last_rib, marks.iliac_crest, marks.torso_top, marks.torso_bottom):
        assert mark.slice_index is not None and mark.z_mm is not None
        assert volume.geometry.z_of_slice(int(mark.slice_index)) == pytest.approx(mark.z_mm)
    assert marks.l3.extent_slices is not None and marks.l3.extent_z_mm is not None
    assert marks.l3.slice_index is not None
    first, last = marks.l3.extent_slices
    z_ends = sorted(volume.geometry.z_of_slice(k) for k in (first, last))
    assert z_ends == pytest.approx(list(marks.l3.extent_z_mm))
    assert first <= marks.l3.slice_index <= last


def test_vertebrae_are_counted_from_the_sacrum_and_from_t12(
    phantom: Phantom, whole: dict[bool, Anatomy]
) -> None:
    anatomy = whole[True]
    named = {v.name: v for v in anatomy.landmarks.vertebrae if v.name}
    assert {"S1", "L5", "L4", "L3", "L2", "L1", "T12"} <= set(named)
    for name in ("L5", "L4", "L3", "L2", "L1", "T12"):
        lo, hi = phantom.vertebrae[name]
        found = named[name].extent_z_mm
        assert abs(found[0] - lo) <= TOLERANCE_MM and abs(found[1] - hi) <= TOLERANCE_MM, name
    assert "sacrum" in anatomy.landmarks.l3.method and "T12" in anatomy.landmarks.l3.method
    assert anatomy.landmarks.l3.confidence >= 0.9
    for name in ("L5", "L4", "L3", "L2", "L1"):  # every cue that supports the name
        cues = " ".join(named[name].cues)
        assert named[name].confirmed
        assert "sacral count" in cues and "last-rib count" in cues, (name, cues)
    assert any("iliac crest" in c for c in named["L4"].cues)


def test_legs_are_cut_off_the_trunk(phantom: Phantom, whole: dict[bool, Anatomy]) -> None:
    anatomy = whole[True]
    split = anatomy.landmarks.leg_split_slice
    assert split is not None
    assert abs(phantom.z_mm[split] - 60.0) <= TOLERANCE_MM
    below = anatomy.parts.trunk[: split - 1]
    assert not below.any() and anatomy.parts.legs[: split - 1].any()


def test_scan_stopping_above_the_iliac_crest_has_no_crest(phantom: Phantom) -> None:
    cropped = phantom.crop(280.0, 480.0)
    marks = _anatomy(cropped).landmarks
    assert not marks.iliac_crest.present
    assert marks.iliac_crest.slice_index is None and marks.iliac_crest.z_mm is None
    assert marks.iliac_crest.reason
    assert abs(_z(marks.last_rib) - phantom.truth["last_rib"]) <= TOLERANCE_MM
    # without a sacrum only the last-rib count names the vertebrae: named, not confirmed,
    # and L3 is not named from one count
    assert not marks.l3.present
    assert "only the last-rib count" in str(marks.l3.reason)
    named = {v.name: v for v in marks.vertebrae if v.name}
    assert {"T12", "L1", "L2", "L3"} <= set(named)
    assert not any(v.confirmed for v in marks.vertebrae)
    assert all("last-rib count" in " ".join(v.cues) for v in named.values())


def test_pelvis_cut_below_the_crest_still_has_its_crest(phantom: Phantom) -> None:
    marks = _anatomy(phantom.crop(235.0, 480.0)).landmarks
    assert abs(_z(marks.iliac_crest) - phantom.truth["iliac_crest"]) <= TOLERANCE_MM
    assert not marks.torso_bottom.present


def test_scan_starting_inside_the_pelvis_has_no_crest(phantom: Phantom) -> None:
    marks = _anatomy(phantom.crop(100.0, 250.0)).landmarks
    assert not marks.iliac_crest.present
    assert "top of the scan" in str(marks.iliac_crest.reason)


def test_rib_cage_cut_by_the_bottom_of_the_scan_has_no_lower_margin(phantom: Phantom) -> None:
    marks = _anatomy(phantom.crop(phantom.truth["last_rib"] + 4.0, 560.0)).landmarks
    assert not marks.last_rib.present
    assert "bottom of the scan" in str(marks.last_rib.reason)
    assert not marks.l3.present and marks.l3.reason


def test_scan_below_the_ribs_has_no_rib(phantom: Phantom) -> None:
    marks = _anatomy(phantom.crop(100.0, 350.0)).landmarks
    assert not marks.last_rib.present
    assert "no ribs" in str(marks.last_rib.reason)
    # the sacral count alone names the vertebrae but does not confirm L3
    assert not marks.l3.present
    assert "only the sacral count" in str(marks.l3.reason)
    l3 = next(v for v in marks.vertebrae if v.name == "L3")
    assert not l3.confirmed and any("sacral count" in c for c in l3.cues)
    assert abs(sum(l3.extent_z_mm) / 2 - _middle(phantom, "L3")) <= TOLERANCE_MM


def test_l3_cut_by_the_edge_of_the_scan_is_absent(phantom: Phantom) -> None:
    marks = _anatomy(phantom.crop(300.0, 560.0)).landmarks
    assert not marks.l3.present
    assert marks.l3.reason


@pytest.mark.parametrize("arms", ["apart", "touching"])
def test_arms_beside_the_trunk_are_excluded(arms: str) -> None:
    phantom = build_phantom(z_top=420.0, width_px=160, arms=arms).crop(180.0, 420.0)
    anatomy = _anatomy(phantom)
    frame = anatomy.frame
    waist = slice(int(np.searchsorted(frame.z_mm, 270.0)), int(np.searchsorted(frame.z_mm, 360.0)))
    cols = (np.arange(anatomy.parts.trunk.shape[2]) - (anatomy.parts.trunk.shape[2] - 1) / 2) * 3.0
    outside_trunk = np.abs(cols) > 140.0 + 3.0  # the phantom's trunk radius plus a pixel
    assert not anatomy.parts.trunk[waist][:, :, outside_trunk].any()
    assert anatomy.parts.arms[waist].any()
    marks = anatomy.landmarks
    assert abs(_z(marks.last_rib) - phantom.truth["last_rib"]) <= TOLERANCE_MM
    assert abs(_z(marks.iliac_crest) - phantom.truth["iliac_crest"]) <= TOLERANCE_MM
