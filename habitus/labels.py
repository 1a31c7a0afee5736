"""The seven body-composition classes and their label values (DESIGN.md §2)."""

from enum import IntEnum


class Tissue(IntEnum):
    """Label values used in every label map and as DICOM-SEG segment numbers."""

    BACKGROUND = 0
    SKIN = 1
    BONE = 2
    MUSCLE = 3
    AVF = 4  # abdominal visceral fat
    SF = 5  # subcutaneous (with intramuscular and intrathoracic) fat
    IO = 6  # internal organs and vessels
    CNS = 7  # central nervous system

    @property
    def display_name(self) -> str:
        return DISPLAY_NAMES[self]


DISPLAY_NAMES: dict[Tissue, str] = {
    Tissue.BACKGROUND: "Background",
    Tissue.SKIN: "Skin",
    Tissue.BONE: "Bone",
    Tissue.MUSCLE: "Skeletal muscle",
    Tissue.AVF: "Abdominal visceral fat",
    Tissue.SF: "Subcutaneous fat",
    Tissue.IO: "Internal organs and vessels",
    Tissue.CNS: "Central nervous system",
}

TISSUE_CLASSES: tuple[Tissue, ...] = tuple(t for t in Tissue if t != Tissue.BACKGROUND)
"""The seven foreground classes, in label order."""

NUM_LABELS = len(Tissue)  # 8 outputs of the network, background included

# Display colours (RGB), shared by the preview and the SEG's recommended display values.
COLORS: dict[Tissue, tuple[int, int, int]] = {
    Tissue.SKIN: (255, 214, 170),
    Tissue.BONE: (241, 238, 220),
    Tissue.MUSCLE: (214, 39, 40),
    Tissue.AVF: (255, 221, 0),
    Tissue.SF: (31, 200, 220),
    Tissue.IO: (44, 160, 44),
    Tissue.CNS: (148, 103, 189),
}

# Attenuation ranges (HU) the paper's annotators started from.
MUSCLE_HU = (-29.0, 150.0)
FAT_HU = (-190.0, -30.0)
BONE_HU_MIN = 250.0
