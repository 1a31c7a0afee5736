"""A calcified aorta against the spine is vessel (internal organs and vessels), not bone."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from habitus.labels import Tissue
from habitus.phantoms.slices import HU_AORTA, HU_FAT
from habitus.phantoms.torso import synthetic_torso
from habitus.phantoms.write_dicom import axial_geometry
from habitus.segment.rules import RuleSegmenter
from habitus.segment.rules.vessels import plaque_on_pools
from habitus.volume import CTVolume

from .shapes import SPACING as GRID
from .shapes import ellipse

SHAPE = (12, 200, 256)
SPACING = (2.5, 1.5, 1.5)
LUMEN_R = 10.0
WALL_MM = 2.0
BODY_R = 16.0  # mm, about the synthetic torso's vertebral body on this grid
CALCIFIED_HU = 450.0


def _xy() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Slice coordinates in mm as the synthetic torso lays them out (+x left, +y back)."""
    _, nj, ni = SHAPE
    x = (np.arange(ni, dtype=np.float64) - (ni - 1) / 2.0) * SPACING[2]
    y = (np.arange(nj, dtype=np.float64) - (nj - 1) / 2.0) * SPACING[1]
    return x[np.newaxis, :], y[:, np.newaxis]


def _vertebral_body(labels_2d: NDArray[np.uint8]) -> tuple[NDArray[np.bool_], float, float]:
    """The vertebral body (bone in front of the canal, on the torso's exact labels).

    Returns it with the x of its middle and the y of its front, in mm.
    """
    x, y = _xy()
    canal_front = float(y[np.nonzero((labels_2d == Tissue.CNS).any(axis=1))[0][0], 0])
    body = (labels_2d == Tissue.BONE) & (y < canal_front) & (np.abs(x) < 40.0)
    rows = np.nonzero(body.any(axis=1))[0]
    return body, float(np.broadcast_to(x, body.shape)[body].mean()), float(y[rows[0], 0])


def calcified_aorta() -> tuple[CTVolume, NDArray[np.bool_], NDArray[np.bool_]]:
    """The synthetic torso with its aorta moved against the vertebral body, wall calcified.

    Returns the volume, the calcified wall and the vertebral body, on the volume's grid.
    """
    hu, labels = synthetic_torso(SHAPE, SPACING, seed=3)
    x, y = _xy()
    rng = np.random.default_rng(4)
    out = hu.astype(np.float32)
    walls = np.zeros(SHAPE, dtype=bool)
    bodies = np.zeros(SHAPE, dtype=bool)
    for k in range(SHAPE[0]):
        body, bx, front = _vertebral_body(labels[k])
        body_r = BODY_R
        by = front + body_r
        # The torso's own aorta, left-anterior of the body, becomes fat.
        old = (labels[k] == Tissue.IO) & (np.hypot(x - bx - 1.3 * body_r, y - front) <= body_r)
        # The new one touches the body's front-left surface, 45 degrees off the midline.
        reach = body_r + WALL_MM + LUMEN_R
        distance = np.hypot(x - bx - reach / np.sqrt(2.0), y - by + reach / np.sqrt(2.0))
        lumen = distance <= LUMEN_R
        wall = (distance > LUMEN_R) & (distance <= LUMEN_R + WALL_MM) & ~body
        noise = rng.normal(0.0, 8.0, SHAPE[1:])
        out[k][old] = HU_FAT + noise[old]
        out[k][lumen] = HU_AORTA + noise[lumen]
        out[k][wall] = CALCIFIED_HU + noise[wall]
        walls[k], bodies[k] = wall, body
    volume = CTVolume(hu=np.rint(out).astype(np.int16), geometry=axial_geometry(SHAPE, SPACING))
    return volume, walls, bodies


@pytest.fixture(scope="module")
def segmented() -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.bool_]]:
    volume, wall, body = calcified_aorta()
    return RuleSegmenter().segment(volume), wall, body


def test_calcified_aortic_wall_touching_the_spine_is_not_bone(
    segmented: tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.bool_]],
) -> None:
    labels, wall, _ = segmented
    # Where the wall meets the cortex the two cannot be told apart; the rest is not bone.
    assert (labels[wall] == Tissue.BONE).mean() < 0.35


def test_the_vertebral_body_beside_it_stays_bone(
    segmented: tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.bool_]],
) -> None:
    labels, _, body = segmented
    assert (labels[body] == Tissue.BONE).mean() > 0.95


def test_plaque_against_an_enhanced_pool_in_the_cavity_is_vessel() -> None:
    """Thin bone ringing a pool inside the cavity is vessel wall; a rib in the wall and a
    vertebral body (thick) against the same pool stay bone."""
    pixel = (GRID[1], GRID[2])
    lumen = ellipse(0, 0, 12, 12)
    plaque = ellipse(0, 0, 14, 14) & ~lumen
    vertebra = ellipse(0, 32, 15, 18)  # touching the plaque
    rib = ellipse(-60, 0, 4, 10)
    bone = np.stack([plaque | vertebra | rib] * 3)
    pools = np.stack([lumen] * 3)
    cavity = np.stack([~ellipse(-60, 0, 12, 30)] * 3)
    wall = plaque_on_pools(bone, pools, cavity, pixel)
    assert wall[:, plaque].mean() > 0.9
    assert wall[:, vertebra].mean() < 0.02  # a corner where the two meet, at most
    assert not wall[:, rib].any()
