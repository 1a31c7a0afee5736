"""Bone completion: cancellous bone stops at the outline where partial volume puts it."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from habitus.segment.rules.bone import below_half_way, complete_bone

from .shapes import SPACING, ellipse

PIXEL = (SPACING[1], SPACING[2])


def _edge_case(outline_hu: float) -> tuple[NDArray[np.int16], NDArray[np.bool_]]:
    """A bone disc at 300 HU in muscle at 40 HU whose outermost ring reads ``outline_hu``."""
    inner = ellipse(0, 0, 20, 20)
    disc = ellipse(0, 0, 22, 22)
    hu = np.full((1, *disc.shape), 40.0)
    hu[0][disc] = outline_hu
    hu[0][inner] = 300.0
    return hu.astype(np.int16), disc[np.newaxis]


def test_outline_below_half_way_is_flagged() -> None:
    # Midpoint between 300 (bone) and 40 (muscle) is about 170 HU.
    hu, disc = _edge_case(outline_hu=120.0)
    flagged = below_half_way(hu, disc, PIXEL)
    outline = disc & ~np.asarray(ellipse(0, 0, 20, 20))[np.newaxis]
    assert flagged[outline].mean() > 0.9
    assert not flagged[0][ellipse(0, 0, 18, 18)].any()  # the inside is never an outline


def test_outline_above_half_way_is_kept() -> None:
    hu, disc = _edge_case(outline_hu=230.0)
    assert not below_half_way(hu, disc, PIXEL).any()


def _vertebra(rim_hu: float, seed: int = 0) -> tuple[NDArray[np.int16], NDArray[np.bool_]]:
    """Grainy cancellous bone (about 180 HU) in a broken 500 HU cortex, a soft rim outside."""
    rng = np.random.default_rng(seed)
    body = ellipse(0, 0, 16, 18)
    cortex = body & ~ellipse(0, 0, 13, 15)
    gaps = np.abs(np.arange(body.shape[1]) - body.shape[1] / 2)[np.newaxis, :] < 4
    rim = ellipse(0, 0, 18, 20) & ~body
    slice_hu = np.full(body.shape, 40.0)
    slice_hu[rim] = rim_hu
    slice_hu[body] = 180.0 + rng.normal(0, 45, body.shape)[body]
    slice_hu[cortex & ~gaps] = 500.0
    hu = np.repeat(slice_hu[np.newaxis], 3, axis=0).astype(np.int16)
    return hu, np.repeat(rim[np.newaxis], 3, axis=0)


def test_cancellous_walk_leaves_a_partial_volume_rim_outside() -> None:
    # The rim reads above the cancellous threshold (80 HU) and beside grainy bone, but below
    # half way between the bone and the muscle: it is soft tissue.
    hu, rim = _vertebra(rim_hu=100.0)
    body = np.ones(hu.shape, dtype=bool)
    seeds = hu > 250
    bones = complete_bone(hu, seeds, body, body, SPACING, pools=~body)
    assert bones.bone[rim].mean() < 0.2
    inside = np.repeat(ellipse(0, 0, 12, 14)[np.newaxis], 3, axis=0)
    assert bones.bone[inside].mean() > 0.95  # the marrow is still filled


def test_cancellous_walk_keeps_a_dense_rim() -> None:
    hu, rim = _vertebra(rim_hu=260.0)
    body = np.ones(hu.shape, dtype=bool)
    bones = complete_bone(hu, hu > 250, body, body, SPACING, pools=~body)
    assert bones.bone[rim].mean() > 0.9
