"""Enhanced pools: blood and organs are found, marrow and cartilage are not."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from habitus.segment.rules.enhanced import enhanced_pools, enhanced_vessels

from .shapes import SPACING, ellipse

SLICES = 4


def _slice(noise_hu: float = 10.0, seed: int = 0) -> tuple[NDArray[np.int16], dict[str, NDArray]]:
    """Muscle at 40 HU in fat, holding: an aorta of blood at 300 HU beside a vertebral body
    whose smooth marrow (120 HU) lies inside a 400 HU cortex, a spleen at 130 HU and a costal
    cartilage (120 HU, 10 mm across) against a rib."""
    rng = np.random.default_rng(seed)
    trunk = ellipse(0, 0, 140, 200)
    hu = np.full(trunk.shape, -1000.0)
    hu[trunk] = -100.0
    hu[ellipse(0, 0, 130, 190)] = 40.0
    body_outer, body_inner = ellipse(40, 0, 20, 24), ellipse(40, 0, 16, 20)
    hu[body_outer] = 400.0
    hu[body_inner] = 120.0
    aorta = ellipse(10, 30, 12, 12)
    hu[aorta] = 300.0
    spleen = ellipse(-10, 130, 35, 25)
    hu[spleen] = 130.0
    rib = ellipse(-100, -80, 6, 9)
    hu[rib] = 500.0
    cartilage = ellipse(-100, -60, 5, 12) & ~rib
    hu[cartilage] = 120.0
    hu = hu + rng.normal(0.0, noise_hu, hu.shape)
    volume = np.repeat(hu[np.newaxis], SLICES, axis=0).astype(np.int16)
    masks = {
        "body": np.repeat(trunk[np.newaxis], SLICES, axis=0),
        "aorta": np.repeat(aorta[np.newaxis], SLICES, axis=0),
        "marrow": np.repeat(body_inner[np.newaxis], SLICES, axis=0),
        "spleen": np.repeat(spleen[np.newaxis], SLICES, axis=0),
        "cartilage": np.repeat(cartilage[np.newaxis], SLICES, axis=0),
    }
    return volume, masks


def test_blood_and_an_enhanced_organ_are_pools() -> None:
    hu, masks = _slice()
    pools = enhanced_pools(hu, masks["body"], SPACING)
    assert pools[masks["aorta"]].mean() > 0.95
    assert pools[masks["spleen"]].mean() > 0.95


def test_smooth_marrow_inside_its_cortex_is_no_pool() -> None:
    hu, masks = _slice()
    pools = enhanced_pools(hu, masks["body"], SPACING)
    assert pools[masks["marrow"]].mean() < 0.05


def test_costal_cartilage_is_no_pool() -> None:
    hu, masks = _slice()
    pools = enhanced_pools(hu, masks["body"], SPACING)
    assert pools[masks["cartilage"]].mean() < 0.05


def test_noisier_scans_keep_the_same_pools() -> None:
    hu, masks = _slice(noise_hu=30.0)
    pools = enhanced_pools(hu, masks["body"], SPACING)
    assert pools[masks["aorta"]].mean() > 0.9
    assert pools[masks["marrow"]].mean() < 0.05


def test_thin_vessels_are_looked_for_inside_the_cavity_only() -> None:
    hu = np.full((SLICES, 160, 220), 40, dtype=np.int16)
    vessel = ellipse(0, 0, 8, 8)  # a common iliac artery
    hu[:, vessel] = 300
    inside = np.ones(hu.shape, dtype=bool)
    assert enhanced_vessels(hu, inside, SPACING)[:, vessel].mean() > 0.9
    assert not enhanced_vessels(hu, ~inside, SPACING).any()
