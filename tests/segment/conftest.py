"""Fixtures of the segmentation tests: synthetic volumes with known labels."""

from __future__ import annotations

import numpy as np
import pytest

from habitus.labels import Tissue
from habitus.volume import CTVolume, Geometry
from tests.segment.onnx_models import CLASS_CENTRES_HU


def block_volume(
    shape: tuple[int, int, int], block: int, spacing: tuple[float, float, float], seed: int = 0
) -> tuple[CTVolume, np.ndarray]:
    """Cubes of ``block`` voxels, each filled with one random class's HU centre."""
    rng = np.random.default_rng(seed)
    blocks = [-(-n // block) for n in shape]
    classes = rng.integers(0, len(Tissue), size=blocks).astype(np.uint8)
    labels = classes.repeat(block, 0).repeat(block, 1).repeat(block, 2)
    labels = labels[: shape[0], : shape[1], : shape[2]]
    centres = np.array([CLASS_CENTRES_HU[t] for t in Tissue], dtype=np.int16)
    volume = CTVolume(hu=centres[labels], geometry=Geometry(spacing=spacing, origin=(0, 0, 0)))
    return volume, labels


@pytest.fixture
def blocks_native() -> tuple[CTVolume, np.ndarray]:
    """A 1 mm volume, not a multiple of the 16-voxel patch along any axis."""
    return block_volume((21, 37, 30), block=6, spacing=(1.0, 1.0, 1.0))
