"""Synthetic CT phantoms with exact body-composition labels: the one place anatomy is painted
for the demo, the tests, the benchmarks and training (numpy and scipy only).

- ``spec``, ``materials``, ``canvas``, ``body``, ``generator``: whole-body adults drawn from a
  seed (stature, fat, muscle, arms, contrast phase, marrow) and scanned by a drawn protocol
  (range, field of view, spacing, noise, table); training and the rules' tests use them.
- ``trunk``: the trunk with its skeleton around L3 that ``habitus demo`` writes.
- ``torso``: a torso of ellipses spread over any scan length.
- ``landmarks``: a label map whose landmarks are known, with the vertebral variants (4 to 6
  lumbar vertebrae, 11 to 13 rib pairs, a low 11th rib, tapered ribs, a sacralised L5).
- ``slices`` and ``skeleton``: the painting the trunk phantoms share.
- ``pet``: a PET's uptake per tissue and the header values that state it; ``write_dicom``: the
  one writer, a volume as a CT or PET DICOM series; ``studies``: whole synthetic studies
  (``python -m habitus.phantoms.studies``).
"""

from habitus.phantoms.generator import Phantom, make_phantom, render
from habitus.phantoms.spec import (
    SCAN_RANGES,
    Acquisition,
    PhantomSpec,
    random_acquisition,
    random_spec,
)

__all__ = [
    "SCAN_RANGES",
    "Acquisition",
    "Phantom",
    "PhantomSpec",
    "make_phantom",
    "random_acquisition",
    "random_spec",
    "render",
]
