"""The rules that decide which series of a study is analysed, and how kernels are ranked.

Defaults come from :func:`habitus.config.get_settings` where the settings name them
(``min_slices``, ``max_slice_thickness_mm``); the rest are fixed clinical conventions that a
site can still override per call.
"""

from __future__ import annotations

import re
from enum import IntEnum

from pydantic import BaseModel, ConfigDict, Field

from habitus.config import get_settings

# Reconstruction kernels, matched case-insensitively against the joined ConvolutionKernel
# values. Soft-tissue kernels keep fat and muscle HU unbiased and noise low; bone and lung
# kernels sharpen edges at the cost of noise that widens the fat and muscle HU ranges.
SOFT_KERNEL_PATTERNS: tuple[str, ...] = (
    r"^[BIJQ][a-z]?[1-4]\d",  # Siemens B30f, B31s, Br36, Br38f, I30f, I31f, Qr40, J30
    r"^(STANDARD|SOFT|SMOOTH|ABDOMEN|BODY)",  # GE and generic names
    r"^[ABC]$",  # Philips A, B, C
    r"^FC(0\d|1[0-8])$",  # Canon / Toshiba body kernels FC01..FC18
)
SHARP_KERNEL_PATTERNS: tuple[str, ...] = (
    r"^[BIJQH][a-z]?[5-9]\d",  # Siemens B60f, B70f, Br59, Bl57, I70f, Hr64
    r"LUNG|BONE|EDGE|SHARP|DETAIL|CHEST|ULTRA",  # GE LUNG, BONE, BONEPLUS, EDGE, DETAIL
    r"^(D|E|L|Y[A-D])$",  # Philips D, E, L, YA..YD
    r"^FC(3\d|[5-9]\d)$",  # Canon / Toshiba bone and lung kernels
)

# ImageType values of images that are never a volume to measure: scout views, projections,
# screen captures and cine loops.
REFUSED_IMAGE_TYPES: tuple[str, ...] = (
    "LOCALIZER",
    "MIP",
    "MINIP",
    "PROJECTION IMAGE",
    "SCREEN SAVE",
    "CINE",
    "VOLUME RENDERING",
)
# ImageType values of reconstructions made from other images. Axial reconstructions from thin
# slices are often the only CT a PACS keeps; they are analysed when no ORIGINAL series qualifies.
DERIVED_IMAGE_TYPES: tuple[str, ...] = ("DERIVED", "SECONDARY", "MPR", "REFORMATTED")

# Secondary Capture SOP classes (…1.7 and its multi-frame …1.7.x): pictures of images, whose
# pixel values are not calibrated Hounsfield units.
SECONDARY_CAPTURE_SOP_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.7"


class KernelClass(IntEnum):
    """Preference order of reconstruction kernels: lower is preferred."""

    SOFT = 0
    UNKNOWN = 1
    SHARP = 2


def _default_min_slices() -> int:
    return get_settings().min_slices


def _default_max_thickness() -> float:
    return get_settings().max_slice_thickness_mm


class SeriesRules(BaseModel):
    """Which series may be analysed, and which one is preferred when several may.

    A series passes when it is CT Image Storage (not a secondary capture), axial within
    ``max_axial_deviation_deg``, none of ``refused_image_types`` (scouts, projections),
    single-frame, has at least ``min_slices`` instances and slices no thicker (and no
    further apart) than ``max_slice_thickness_mm``, and its slices form a
    regular volume (one orientation, one image size, uniform spacing within
    ``spacing_tolerance``, no gaps, no duplicate positions, tilt below ``max_tilt_deg``).
    An ORIGINAL series always wins over a DERIVED one (``derived_image_types``: an axial
    reconstruction made from other images); a DERIVED axial series is analysed, with a warning,
    only when no ORIGINAL series qualifies, and not at all when ``derived_fallback`` is off.
    Among passing series the preferred one has a soft-tissue kernel, then the thinnest
    slices, then the most slices: kernel comes first because a sharp kernel biases the fat and
    muscle HU ranges the measurements rely on, whereas any thickness up to the maximum is
    fine for volumes.
    """

    model_config = ConfigDict(frozen=True)

    modality: str = "CT"
    max_axial_deviation_deg: float = Field(default=10.0, ge=0.0, le=90.0)
    derived_fallback: bool = True
    refused_image_types: tuple[str, ...] = REFUSED_IMAGE_TYPES
    derived_image_types: tuple[str, ...] = DERIVED_IMAGE_TYPES
    min_slices: int = Field(default_factory=_default_min_slices, ge=1)
    max_slice_thickness_mm: float = Field(default_factory=_default_max_thickness, gt=0.0)
    spacing_tolerance: float = Field(default=0.05, gt=0.0, lt=0.5)  # fraction of the interval
    max_tilt_deg: float = Field(default=0.5, ge=0.0)
    soft_kernel_patterns: tuple[str, ...] = SOFT_KERNEL_PATTERNS
    sharp_kernel_patterns: tuple[str, ...] = SHARP_KERNEL_PATTERNS

    def kernel_class(self, kernel: str) -> KernelClass:
        """Classify a ConvolutionKernel (values joined by a backslash) as soft, sharp or unknown."""
        first = kernel.split("\\")[0].strip()
        if not first:
            return KernelClass.UNKNOWN
        if any(re.search(p, first, re.IGNORECASE) for p in self.sharp_kernel_patterns):
            return KernelClass.SHARP
        if any(re.search(p, first, re.IGNORECASE) for p in self.soft_kernel_patterns):
            return KernelClass.SOFT
        return KernelClass.UNKNOWN
