"""Landmarks on real scans, against TotalSegmentator references (a silver standard).

The label maps are built from the references: bone is the union of the reference bones, the
body is the CT above -500 HU. Distances are compared with a 6 mm tolerance (two 3 mm slices),
never for equality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from habitus.anatomy import find_anatomy
from habitus.segment.rules import RuleSegmenter
from tests.anatomy.real_data import RealCase, petct, upper_abdomen

TOLERANCE_MM = 6.0


@pytest.fixture(scope="module")
def abdomen(shared_data: Path) -> RealCase:
    return upper_abdomen(shared_data)


@pytest.fixture(scope="module")
def pet(shared_data: Path) -> RealCase:
    return petct(shared_data)


def _lowest_z(case: RealCase, predicate: object) -> float:
    values = case.values_named(predicate)
    geometry = case.volume.geometry
    return min(geometry.z_of_slice(int(k)) for k in case.slices_with(values))


def _lowest_rib_z(case: RealCase) -> float:
    return _lowest_z(case, lambda n: n.startswith("rib_"))


def test_upper_abdomen_last_rib_matches_the_reference(abdomen: RealCase) -> None:
    marks = find_anatomy(abdomen.labels, abdomen.volume.geometry).landmarks
    assert marks.last_rib.present, marks.last_rib.reason
    assert marks.last_rib.z_mm is not None
    assert abs(marks.last_rib.z_mm - _lowest_rib_z(abdomen)) <= TOLERANCE_MM


def test_upper_abdomen_with_costal_cartilage_as_bone(shared_data: Path) -> None:
    """The model labels rib cartilage as bone: the rib cage's lowest point may be cartilage."""
    case = upper_abdomen(shared_data, cartilage=True)
    marks = find_anatomy(case.labels, case.volume.geometry).landmarks
    assert marks.last_rib.z_mm is not None
    lowest = _lowest_z(case, lambda n: n.startswith("rib_") or n == "costal_cartilages")
    assert abs(marks.last_rib.z_mm - lowest) <= TOLERANCE_MM


def test_upper_abdomen_has_no_crest_and_no_l3(abdomen: RealCase) -> None:
    """T11 to L2: the iliac crest and L3 lie below the scan."""
    marks = find_anatomy(abdomen.labels, abdomen.volume.geometry).landmarks
    assert not marks.iliac_crest.present and marks.iliac_crest.reason
    assert not marks.l3.present and marks.l3.reason
    assert not marks.torso_top.present and not marks.torso_bottom.present


def test_upper_abdomen_vertebrae_are_named_like_the_reference(abdomen: RealCase) -> None:
    """Each named vertebral body's middle slice lies in the reference vertebra of that name."""
    marks = find_anatomy(abdomen.labels, abdomen.volume.geometry).landmarks
    named = [v for v in marks.vertebrae if v.name]
    assert [v.name for v in named] == ["L2", "L1", "T12"]
    for vertebra in named:
        value = next(k for k, n in abdomen.names.items() if n == f"vertebrae_{vertebra.name}")
        k = int(round(vertebra.middle_slice))
        assert (abdomen.reference[k] == value).any(), vertebra


def test_upper_abdomen_l1_body_matches_the_reference(abdomen: RealCase) -> None:
    """The L1 body found (between two discs) spans the slices where the reference has L1 at
    the vertebral body's centre, within 6 mm at each end plate."""
    anatomy = find_anatomy(abdomen.labels, abdomen.volume.geometry)
    frame = anatomy.frame
    rows, cols = anatomy.spine.filled_centres()
    reference = frame.canonical(abdomen.reference)
    l1_value = next(k for k, n in abdomen.names.items() if n == "vertebrae_L1")
    at_centre = [
        int(reference[c, int(rows[c] * frame.pool[0]), int(cols[c] * frame.pool[1])])
        for c in range(frame.n_slices)
    ]
    reference_z = [frame.z_mm[c] for c, v in enumerate(at_centre) if v == l1_value]
    found = next(v for v in anatomy.landmarks.vertebrae if v.name == "L1")
    assert found.complete
    assert abs(found.extent_z_mm[0] - min(reference_z)) <= TOLERANCE_MM
    assert abs(found.extent_z_mm[1] - max(reference_z)) <= TOLERANCE_MM


def test_petct_lower_chest_has_no_waist_landmarks(pet: RealCase) -> None:
    """Ribs 6-12 and T11-T12 only: the ribs run out of the bottom of the scan, so their lower
    margin is below it; no crest, no L3."""
    geometry = pet.volume.geometry
    scan_bottom = min(geometry.z_of_slice(k) for k in (0, pet.labels.shape[0] - 1))
    assert _lowest_rib_z(pet) == pytest.approx(scan_bottom)  # the reference ribs reach it too
    marks = find_anatomy(pet.labels, pet.volume.geometry).landmarks
    assert not marks.last_rib.present
    assert "bottom of the scan" in str(marks.last_rib.reason)
    assert not marks.iliac_crest.present and marks.iliac_crest.reason
    assert not marks.l3.present and marks.l3.reason


def test_petct_arm_against_the_chest_is_excluded(pet: RealCase) -> None:
    """The right arm lies against the chest wall; its humerus marks it for removal."""
    anatomy = find_anatomy(pet.labels, pet.volume.geometry)
    humerus = [v for v, n in pet.names.items() if n.startswith("humerus_")]
    canonical = anatomy.frame.canonical(np.isin(pet.reference, humerus))
    pooled = anatomy.frame.pooled(canonical)
    assert pooled.any()
    assert not (pooled & anatomy.parts.trunk).any()
    assert anatomy.parts.arms.sum() > 0


def test_petct_arms_are_excluded_from_the_rules_own_labels(pet: RealCase) -> None:
    """From the product's own segmentation too: the left arm lies apart from the chest in a
    few slices and against it in the others, and is excluded in all of them."""
    labels = RuleSegmenter().segment(pet.volume)
    anatomy = find_anatomy(labels, pet.volume.geometry)
    humerus = [v for v, n in pet.names.items() if n.startswith("humerus_")]
    canonical = anatomy.frame.canonical(np.isin(pet.reference, humerus))
    pooled = anatomy.frame.pooled(canonical)
    assert pooled.any()
    in_trunk = (pooled & anatomy.parts.trunk).any(axis=(1, 2))
    assert not in_trunk.any(), f"humerus in the trunk in slices {np.flatnonzero(in_trunk)}"
