"""The canonical (superior, posterior, left) view and its way back."""

import numpy as np
import pytest

from habitus.errors import GeometryRefused
from habitus.segment.rules.frame import CanonicalFrame
from habitus.volume import Geometry

AXIAL = ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def test_axial_head_up_series_is_already_canonical() -> None:
    frame = CanonicalFrame.of(Geometry(spacing=(2.0, 0.8, 0.7), origin=(0, 0, 0), direction=AXIAL))
    assert frame.source_axes == (0, 1, 2)
    assert frame.flipped == (False, False, False)
    assert frame.spacing == (2.0, 0.8, 0.7)


def test_nifti_like_ras_order_is_flipped_back() -> None:
    # k towards the head, j towards the front (-y), i towards the patient's right (-x).
    direction = ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0))
    frame = CanonicalFrame.of(
        Geometry(spacing=(3.0, 3.0, 3.0), origin=(0, 0, 0), direction=direction)
    )
    assert frame.source_axes == (0, 1, 2)
    assert frame.flipped == (False, True, True)


def test_coronal_series_is_transposed_and_maps_back_exactly() -> None:
    # k -> +y (back), j -> -z (rows run head to feet), i -> +x (left).
    direction = ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, -1.0, 0.0))
    geometry = Geometry(spacing=(1.5, 1.0, 0.5), origin=(0, 0, 0), direction=direction)
    frame = CanonicalFrame.of(geometry)
    assert frame.source_axes == (1, 0, 2)
    assert frame.flipped == (True, False, False)
    assert frame.spacing == (1.0, 1.5, 0.5)

    source = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    canonical = frame.to_canonical(source)
    assert canonical.shape == (5, 4, 6)
    # Canonical slice 0 is the lowest: the last source row (rows run head to feet).
    assert np.array_equal(canonical[0], source[:, -1, :])
    assert np.array_equal(frame.from_canonical(canonical), source)


def test_oblique_axes_are_refused_with_the_cosines() -> None:
    c = np.cos(np.pi / 4)
    direction = ((0.0, 0.0, 1.0), (0.0, c, c), (0.0, -c, c))
    with pytest.raises(GeometryRefused, match="direction cosines"):
        CanonicalFrame.of(Geometry(spacing=(1, 1, 1), origin=(0, 0, 0), direction=direction))
