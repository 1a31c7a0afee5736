"""Nervous system: the cranial cavity inside the skull, not the pelvis inside its ring."""

import numpy as np

from habitus.labels import Tissue
from habitus.phantoms.write_dicom import axial_geometry
from habitus.segment.rules import RuleSegmenter
from habitus.volume import CTVolume

from .shapes import SPACING, ellipse


def _ring_of_bone_around(content_hu: float, fat_fraction: float = 0.0) -> tuple[np.ndarray, ...]:
    """Eight slices of an elliptic body whose inside is ringed by 6 mm of dense bone."""
    rng = np.random.default_rng(7)
    outline = ellipse(0, 0, 80, 95)
    ring_outer = ellipse(0, 0, 68, 83)
    inside = ellipse(0, 0, 62, 77)
    hu_2d = np.full(outline.shape, -1000.0)
    hu_2d[outline] = -90.0  # scalp fat
    hu_2d[ring_outer] = 1200.0
    hu_2d[inside] = content_hu
    if fat_fraction:
        fat = inside & (rng.random(outline.shape) < fat_fraction)
        hu_2d[fat] = -100.0
    hu = np.repeat(hu_2d[np.newaxis], 8, axis=0) + rng.normal(0, 6, (8, *outline.shape))
    return np.clip(hu, -1024, 3000).astype(np.int16), np.repeat(inside[np.newaxis], 8, axis=0)


def _segment(hu: np.ndarray) -> np.ndarray:
    volume = CTVolume(hu=hu, geometry=axial_geometry(hu.shape, SPACING))
    return RuleSegmenter().segment(volume)


def test_brain_inside_the_skull_is_nervous_system() -> None:
    hu, inside = _ring_of_bone_around(content_hu=35.0)
    labels = _segment(hu)
    assert (labels[inside] == Tissue.CNS).mean() > 0.95
    assert (labels[hu > 1000] == Tissue.BONE).mean() > 0.95


def test_fatty_content_of_a_bony_ring_is_not_brain() -> None:
    hu, inside = _ring_of_bone_around(content_hu=20.0, fat_fraction=0.4)
    labels = _segment(hu)
    assert not (labels[inside] == Tissue.CNS).any()
