"""A 12th rib pair broken into pieces, none large enough to be called a rib, at 1 mm slices.

So the rule-based segmenter leaves the thin, oblique 12th ribs of ts-upper-abdomen resampled
to 1 mm (pieces of 0.5-0.7 cm3). The pieces near the spine are the rib's neck and are lent to
the nearest rib, the 11th, which then meets the column in two runs of slices: its own neck
and, lower down, the 12th's. The lower run is the lowest rib head on the spine; taking the
11th's head instead put T12 on T11 and named every vertebra one level too high (with the
sacrum in the scan, six lumbar-type bodies between T12 and S1 and no name at all).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import ndimage as ndi

from habitus.anatomy import find_anatomy
from habitus.anatomy.schema import Landmarks
from habitus.labels import Tissue
from habitus.phantoms.landmark_phantom import Phantom, build_phantom

SLICE_MM = 1.0
PIECE_SLICES, PERIOD_SLICES = 3, 6  # 3 mm of rib kept in every 6 mm of z


@cache
def _broken_twelfth() -> Phantom:
    """The landmark phantom up to T4 with the 12th ribs cut into pieces along z."""
    twelve = build_phantom(z_top=620.0, slice_mm=SLICE_MM)
    eleven = build_phantom(z_top=620.0, rib_pairs=11, slice_mm=SLICE_MM)
    # bone of the 12-pair phantom alone: the 12th ribs, and the far end of its longer 11th
    extra = (twelve.labels == Tissue.BONE) & (eleven.labels != Tissue.BONE)
    parts, _ = ndi.label(extra, structure=np.ones((3, 3, 3), dtype=bool))
    _, xx = twelve.grid_mm()
    near_spine = parts[:, np.abs(xx) < 30.0]
    twelfth = np.isin(parts, np.unique(near_spine[near_spine > 0]))
    labels = twelve.labels.copy()
    gaps = (np.arange(labels.shape[0]) % PERIOD_SLICES >= PIECE_SLICES)[:, None, None]
    labels[twelfth & gaps] = Tissue.MUSCLE
    return Phantom(labels, twelve.z_mm, twelve.vertebrae, twelve.truth, SLICE_MM)


def _named(phantom: Phantom) -> tuple[Landmarks, list[tuple[str, str | None]]]:
    labels, volume = phantom.volume()
    marks = find_anatomy(labels, volume.geometry).landmarks
    out = []
    for vertebra in (v for v in marks.vertebrae if v.name):
        z = volume.geometry.z_of_slice(int(round(vertebra.middle_slice)))
        truth = next((n for n, (lo, hi) in phantom.vertebrae.items() if lo <= z <= hi), None)
        out.append((str(vertebra.name), truth))
    return marks, out


def test_the_twelfth_rib_in_pieces_still_places_t12() -> None:
    """Chest to mid-abdomen (no sacrum): the last-rib count alone names every body, right."""
    phantom = _broken_twelfth().crop(300.0, 600.0)
    marks, named = _named(phantom)
    assert ("T12", "T12") in named
    assert all(name == truth for name, truth in named), named
    assert not marks.l3.present and "only the last-rib count" in str(marks.l3.reason)


def test_the_twelfth_rib_in_pieces_lets_both_counts_agree() -> None:
    """Sacrum to T4: the sacral and last-rib counts agree, and L3 is the true L3."""
    phantom = _broken_twelfth()
    marks, named = _named(phantom)
    assert all(name == truth for name, truth in named), named
    assert [n for n, _ in named][:7] == ["S1", "L5", "L4", "L3", "L2", "L1", "T12"]
    assert marks.l3.present and marks.l3.z_mm is not None
    lo, hi = phantom.vertebrae["L3"]
    assert lo <= marks.l3.z_mm <= hi
