"""Synthetic PET-CT studies for the PET tests: the trunk phantom's CT, its true labels, and PET
series of known uptake per tissue written with chosen headers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from habitus.phantoms.pet import TYPICAL_SUV, PetHeader, pet_image
from habitus.phantoms.slices import with_noise
from habitus.phantoms.trunk import trunk_anatomy
from habitus.phantoms.write_dicom import axial_geometry, write_series
from habitus.uids import derived_uid
from habitus.volume import Geometry

SHAPE = (120, 160, 160)  # 2 mm slices from the sacrum to T11, 2.5 mm pixels
SPACING = (2.0, 2.5, 2.5)
STUDY_UID = derived_uid("habitus-pet-test-study")
FRAME_UID = derived_uid("habitus-pet-test-for", STUDY_UID)


@dataclass(frozen=True)
class Study:
    root: Path
    labels: NDArray[np.uint8]
    geometry: Geometry


def write_ct(root: Path) -> Study:
    geometry = axial_geometry(SHAPE, SPACING)
    z0 = geometry.z_of_slice(0)
    hu, labels = trunk_anatomy(SHAPE, SPACING, z0, z0 + (SHAPE[0] - 1) * SPACING[0] / 2.0)
    write_series(
        root / "ct",
        with_noise(hu, 0),
        geometry,
        series_description="CT Body 2 B30f",
        series_number=2,
        study_uid=STUDY_UID,
        frame_of_reference_uid=FRAME_UID,
        patient_size_m=1.75,
        patient_weight_kg=75.0,
    )
    return Study(root, labels, geometry)


def add_pet(
    study: Study,
    header: PetHeader,
    *,
    number: int = 6,
    description: str = "PET AC",
    frame_uid: str = FRAME_UID,
    study_uid: str = STUDY_UID,
) -> None:
    per_unit = (
        1.0 / header.philips_suv_factor
        if header.philips_suv_factor is not None
        else header.bq_ml_per_suv()
    )
    values, geometry = pet_image(study.labels, study.geometry, TYPICAL_SUV, per_unit=per_unit)
    write_series(
        study.root / f"pet{number}",
        values,
        geometry,
        pet=header,
        study_uid=study_uid,
        frame_of_reference_uid=frame_uid,
        series_number=number,
        series_description=description,
    )
