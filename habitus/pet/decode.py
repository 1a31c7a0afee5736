"""Decode the chosen PET series into a float volume of rescaled pixel values.

Each slice keeps its own RescaleSlope and RescaleIntercept (scanners scale every PET slice to
fit its own range), so values are stored * slope + intercept per slice, in float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pydicom
from numpy.typing import NDArray

from habitus.dicom.attributes import integer, number
from habitus.dicom.geometry import StackPlan
from habitus.dicom.group import SeriesGroup
from habitus.pet.suv import PetRefused
from habitus.volume import Geometry

# 2**27 voxels (512 MiB as float32) is above any clinical PET (e.g. 400 x 400 x 700).
MAX_PET_VOXELS = 2**27


@dataclass(frozen=True)
class PetVolume:
    values: NDArray[np.float32]  # (k, j, i) rescaled pixel values (Bq/ml or counts)
    geometry: Geometry
    headers: list[pydicom.Dataset]  # slice k at index k


def load_pet(group: SeriesGroup, plan: StackPlan) -> PetVolume:
    """The PET series as a volume in the plan's slice order."""
    assert plan.geometry is not None  # a chosen PET always has a regular geometry
    instances = [group.instances[i] for i in plan.order]
    rows, columns = integer(instances[0].header, "Rows"), integer(instances[0].header, "Columns")
    if not rows or not columns or rows * columns * len(instances) > MAX_PET_VOXELS:
        raise PetRefused(
            "too_large",
            f"PET of {len(instances)} slices of {rows}x{columns}: more than {MAX_PET_VOXELS} "
            "voxels",
        )
    values = np.empty((len(instances), rows, columns), dtype=np.float32)
    for k, instance in enumerate(instances):
        try:
            with instance.source.open() as stream:
                stored = np.asarray(pydicom.dcmread(stream, force=True).pixel_array)
        except Exception as exc:  # any decoder failure means the PET cannot be used
            raise PetRefused(
                "pixels_unreadable", f"cannot decode the PET pixels of {instance.name}: {exc}"
            ) from exc
        if stored.shape != (rows, columns):
            raise PetRefused(
                "pixels_unreadable",
                f"{instance.name}: expected a {rows}x{columns} frame, found {stored.shape}",
            )
        slope = number(instance.header, "RescaleSlope")
        intercept = number(instance.header, "RescaleIntercept") or 0.0
        if not all(math.isfinite(v) for v in (slope or 1.0, intercept)):
            raise PetRefused(
                "pixels_unreadable",
                f"{instance.name}: RescaleSlope {slope} / RescaleIntercept {intercept} are not "
                "finite numbers",
            )
        values[k] = stored.astype(np.float32) * np.float32(
            1.0 if slope is None else slope
        ) + np.float32(intercept)
    return PetVolume(values, plan.geometry, [i.header for i in instances])
