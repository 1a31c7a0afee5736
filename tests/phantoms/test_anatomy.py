"""The whole-body phantoms' anatomy as a real body has it, and the parts they name.

Each check here is one a real CT meets and an earlier phantom did not: the structures whose
label does not say what they are (the psoas, the crura, the iliacus, the kidneys, the
thoracic cavity) are named by the painter itself, with the vertebral level of every slice.
Seeds 1-3, chest to pelvis, at 3 mm.
"""

from __future__ import annotations

import numpy as np
import pytest

from habitus.labels import Tissue
from habitus.phantoms.generator import Phantom, make_phantom

SEEDS = (1, 2, 3)
SPACING = (3.0, 3.0, 3.0)
PARTS = {
    "psoas": Tissue.MUSCLE,
    "crura": Tissue.MUSCLE,
    "iliacus": Tissue.MUSCLE,
    "kidneys": Tissue.IO,
}


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
