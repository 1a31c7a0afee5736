"""Synthetic whole-body CT phantoms with exact body-composition labels."""

from model_export.phantoms.generator import Phantom, make_phantom, render
from model_export.phantoms.spec import (
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
