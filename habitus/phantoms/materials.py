"""Materials of the phantom and their attenuation (HU), drawn per phantom."""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from habitus.phantoms.spec import PhantomSpec


class Material(IntEnum):
    AIR = 0
    LUNG = 1
    FAT = 2
    MUSCLE = 3
    SKIN = 4
    CORTICAL = 5
    RED_MARROW = 6
    YELLOW_MARROW = 7
    RIB = 8
    CARTILAGE = 9
    DISC = 10
    LIVER = 11
    SPLEEN = 12
    KIDNEY = 13
    BLOOD = 14
    BOWEL = 15
    GAS = 16
    BRAIN = 17
    CSF = 18
    EYE = 19
    URINE = 20
    GLAND = 21
    SOFT = 22
    MATTRESS = 23
    TABLE = 24
    HEART = 25


def attenuation_table(spec: PhantomSpec, rng: np.random.Generator) -> NDArray[np.float32]:
    """Mean HU of every material for one phantom (contrast phase, marrow and muscle quality)."""
    u = rng.uniform
    muscle = u(48.0, 60.0) - 28.0 * spec.myosteatosis
    contrast = spec.contrast
    blood = {"none": u(35, 48), "venous": u(130, 190), "arterial": u(180, 320)}[contrast]
    enhance = {"none": 0.0, "venous": 1.0, "arterial": 0.5}[contrast]
    hu = {
        Material.AIR: -1000.0,
        Material.LUNG: u(-880, -800),
        Material.FAT: u(-120, -85),
        Material.MUSCLE: muscle,
        Material.SKIN: muscle + u(-15, 15),
        Material.CORTICAL: u(700, 1300),
        Material.RED_MARROW: u(230, 330) - 120.0 * spec.marrow_age,
        Material.YELLOW_MARROW: u(-40, 40) - 40.0 * spec.marrow_age,
        Material.RIB: u(300, 550) - 100.0 * spec.marrow_age,
        Material.CARTILAGE: u(85, 140),
        Material.DISC: u(65, 100),
        Material.LIVER: u(48, 65) + enhance * u(40, 70),
        Material.SPLEEN: u(40, 52) + enhance * u(50, 80),
        Material.KIDNEY: u(25, 38) + enhance * u(100, 170),
        Material.BLOOD: blood,
        Material.BOWEL: u(5, 40) + enhance * u(10, 40),
        Material.GAS: u(-1000, -900),
        Material.BRAIN: u(28, 40),
        Material.CSF: u(0, 15),
        Material.EYE: u(5, 18),
        Material.URINE: u(0, 15),
        Material.GLAND: u(60, 120),
        Material.SOFT: u(25, 45) + enhance * u(10, 40),
        Material.MATTRESS: u(-950, -700),
        Material.TABLE: u(80, 400),
        Material.HEART: 0.6 * blood + 0.4 * muscle,
    }
    table = np.zeros(len(Material), dtype=np.float32)
    for material, value in hu.items():
        table[material] = value
    return table
