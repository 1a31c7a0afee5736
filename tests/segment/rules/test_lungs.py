"""Lungs against bowel gas, and the thorax they define."""

import numpy as np

from habitus.segment.rules.lungs import bowel_content, lung_masks

from .shapes import SPACING, ellipse


def _abdomen_with_lung_bases_and_gas() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Trunk of 20 slices: lung bases in the top 8, a gas-filled bowel loop lower down."""
    slices = 20
    rng = np.random.default_rng(3)
    trunk = np.repeat(ellipse(0, 0, 90, 130)[np.newaxis], slices, axis=0)
    hu = np.where(trunk, 40.0, -1000.0)
    lungs = np.zeros_like(trunk)
    for side in (-1, 1):
        lungs[12:] |= ellipse(40, side * 60, 35, 40)[np.newaxis]
    # Aerated lung: about -850 HU with vessels and septa; gas: pure air.
    hu[lungs] = rng.normal(-850, 60, lungs.sum())
    gas = np.zeros_like(trunk)
    gas[2:9] = ellipse(-40, 20, 30, 35)[np.newaxis]
    hu[gas] = rng.normal(-1000, 15, gas.sum())
    hu += np.where(trunk & ~lungs & ~gas, rng.normal(0, 10, hu.shape), 0)
    return np.clip(hu, -1024, 3000).astype(np.int16), trunk, lungs, gas


def test_lungs_are_told_from_bowel_gas_by_their_density() -> None:
    hu, trunk, lungs, gas = _abdomen_with_lung_bases_and_gas()
    found = lung_masks(hu, trunk, SPACING)
    assert (found.lungs & lungs).sum() / lungs.sum() > 0.98
    assert not (found.lungs & gas).any()


def test_thorax_lies_around_the_lungs_and_not_below_them() -> None:
    hu, trunk, lungs, _ = _abdomen_with_lung_bases_and_gas()
    thorax = lung_masks(hu, trunk, SPACING).thorax
    assert thorax[12:][lungs[12:]].all()
    # Under the lung bases only the diaphragm's thickness (one slice here) is thorax.
    assert thorax[11].any()
    assert not thorax[:11].any()


def test_no_lungs_no_thorax() -> None:
    hu, trunk, lungs, _ = _abdomen_with_lung_bases_and_gas()
    hu[lungs] = 40
    found = lung_masks(hu, trunk, SPACING)
    assert not found.lungs.any()
    assert not found.thorax.any()


def test_bowel_content_is_the_surroundings_of_gas_inside_the_wall() -> None:
    hu, trunk, lungs, gas = _abdomen_with_lung_bases_and_gas()
    content = bowel_content(hu, trunk & ~lungs, SPACING)
    assert content[gas].all()
    assert not content[15].any()  # no gas in that slice, only lung
