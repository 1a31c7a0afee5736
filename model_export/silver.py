"""Silver labels: a real scan and its references turned into a seven-class label map.

The references of the real scans are TotalSegmentator output (structures) and, where
present, its ``tissue_types`` (skeletal muscle, subcutaneous fat, fat inside the torso wall).
Neither draws the seven classes of DESIGN.md §2, so a label map is built in layers, each
later layer overriding the earlier where it says something:

1. the rule-based segmenter, for what no reference covers (skin, the body wall, the spinal
   canal around the cord, fat of the mesentery against the wall);
2. ``tissue_types`` where present: muscle, subcutaneous fat, and torso fat as AVF below the
   diaphragm (SF above it: intrathoracic fat is SF); never over the rules' skin;
3. the reference structures, by :data:`STRUCTURE_CLASSES` (bones with costal cartilage as
   bone, organs, bowel and vessels as IO, named muscles as muscle, cord and brain as CNS,
   lungs and airways as background).

The result is silver, not gold: it inherits the reference's boundaries and the rules'
errors where no reference reaches. :func:`mapping_table` renders the mapping for the model
card.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from habitus.labels import COLORS, Tissue
from habitus.metrics.contrast import ContrastPhase
from habitus.segment.orientation import canonical_flips, flip_axes
from habitus.segment.rules import RuleSegmenter
from habitus.volume import CTVolume
from model_export.painted_contrast import enhanced_volume, structure_masks
from model_export.real_cases import below_diaphragm, label_names, load_real_cases

Mask = NDArray[np.bool_]

STRUCTURE_CLASSES: tuple[tuple[Tissue, tuple[str, ...], str], ...] = (
    (
        Tissue.BACKGROUND,
        ("lung_", "trachea"),
        "lungs and airways are background (DESIGN.md §2)",
    ),
    (
        Tissue.IO,
        (
            "spleen", "kidney_", "gallbladder", "liver", "stomach", "pancreas",
            "adrenal_gland", "esophagus", "thyroid_gland", "small_bowel", "duodenum", "colon",
            "urinary_bladder", "prostate", "heart", "aorta", "pulmonary_vein",
            "brachiocephalic_", "subclavian_artery", "common_carotid", "atrial_appendage",
            "superior_vena_cava", "inferior_vena_cava", "portal_vein", "iliac_artery",
            "iliac_vena",
        ),
        "solid organs, hollow viscera (with their gas), thyroid, heart and great vessels",
    ),
    (
        Tissue.MUSCLE,
        ("autochthon_", "iliopsoas_", "gluteus_"),
        "named skeletal muscles",
    ),
    (
        Tissue.CNS,
        ("spinal_cord", "brain"),
        "cord and brain; the rest of the spinal canal comes from the rules",
    ),
    (
        Tissue.BONE,
        (
            "vertebrae_", "rib_", "sacrum", "hip_", "femur_", "humerus_", "scapula_",
            "clavicula_", "skull", "sternum", "costal_cartilages",
        ),
        "every bone with its marrow, and the costal cartilages (DESIGN.md §2)",
    ),
)  # fmt: skip
"""Reference structure name prefixes -> class, applied in this order (bone last wins)."""

PREVIEW_MIN_WIDTH = 600
LEGEND_HEIGHT = 40
LEGEND_COLUMNS = 4

TISSUE_TYPE_CLASSES: tuple[tuple[str, str, str], ...] = (
    ("skeletal_muscle", "skeletal muscle", "everywhere"),
    ("subcutaneous_fat", "subcutaneous fat", "everywhere"),
    ("torso_fat", "abdominal visceral fat", "below the diaphragm; SF above it"),
)
"""``tissue_types`` masks -> class, as the table of the model card shows them."""


def prefixes_of(tissue: Tissue) -> tuple[str, ...]:
    """The reference name prefixes mapped to ``tissue``."""
    return tuple(p for t, prefixes, _ in STRUCTURE_CLASSES if t == tissue for p in prefixes)


@dataclass(frozen=True)
class SilverCase:
    name: str
    volume: CTVolume
    labels: NDArray[np.uint8]  # Tissue values on the volume's grid
    enhancing: dict[str, Mask]  # reference structures that take up contrast, by name

    def with_contrast(self, phase: ContrastPhase, seed: int | None = None) -> SilverCase:
        """The case with ``phase``'s contrast painted into it; the labels do not change."""
        volume = enhanced_volume(self.volume, self.enhancing, phase, seed)
        return replace(self, name=f"{self.name}-{phase.value}", volume=volume)


def structure_mask(
    reference: NDArray[np.integer], names: dict[int, str], prefixes: tuple[str, ...]
) -> Mask:
    """Union of the reference structures whose names start with one of ``prefixes``."""
    values = [v for v, n in names.items() if n.startswith(prefixes)]
    return np.asarray(np.isin(reference, values))


def silver_labels(
    volume: CTVolume,
    reference: NDArray[np.integer],
    names: dict[int, str],
    tissue: dict[str, Mask],
    below_diaphragm: Mask,
) -> NDArray[np.uint8]:
    """The seven-class label map of a real scan from its references (module docstring)."""
    labels = RuleSegmenter().segment(volume).copy()
    skin = labels == Tissue.SKIN
    fat = tissue.get("torso_fat")
    for name, value in (
        ("skeletal_muscle", Tissue.MUSCLE),
        ("subcutaneous_fat", Tissue.SF),
    ):
        if name in tissue:
            labels[tissue[name] & ~skin] = value
    if fat is not None:
        labels[fat & ~skin & below_diaphragm] = Tissue.AVF
        labels[fat & ~skin & ~below_diaphragm] = Tissue.SF
    for value, prefixes, _ in STRUCTURE_CLASSES:
        labels[structure_mask(reference, names, prefixes)] = value
    return labels


def mapping_table() -> str:
    """The mapping as a Markdown table (for the model card)."""
    rows = ["| reference | class | note |", "|---|---|---|"]
    for value, prefixes, note in STRUCTURE_CLASSES:
        shown = ", ".join(f"`{p}*`" if p.endswith("_") else f"`{p}`" for p in prefixes)
        rows.append(f"| {shown} | {value.display_name} | {note} |")
    for name, shown_class, where in TISSUE_TYPE_CLASSES:
        rows.append(f"| `tissue_types/{name}` | {shown_class} | {where}; never over skin |")
    rows.append("| anything else in the body | the rule-based segmenter's class | |")
    return "\n".join(rows)


def preview(volume: CTVolume, labels: NDArray[np.uint8], path: Path, count: int = 4) -> Path:
    """Axial slices, CT beside its silver labels, and a legend, for a person to check.

    Slices are shown as a viewer shows them (front up, the patient's left on the right),
    head-most first."""
    flips = canonical_flips(volume.geometry)
    hu, labels = flip_axes(volume.hu, flips)[::-1], flip_axes(labels, flips)[::-1]
    slices = np.linspace(0, hu.shape[0] - 1, min(count, hu.shape[0])).round()
    panels = []
    for k in dict.fromkeys(int(s) for s in slices):
        grey = np.clip((hu[k].astype(np.float32) + 160.0) / 400.0, 0.0, 1.0) * 255.0
        rgb = np.repeat(grey[..., None], 3, axis=2)
        painted = rgb.copy()
        for tissue, colour in COLORS.items():
            where = labels[k] == tissue
            painted[where] = 0.45 * rgb[where] + 0.55 * np.asarray(colour)
        panels.append(np.concatenate([rgb, painted], axis=1))
    image = Image.fromarray(np.concatenate(panels, axis=0).astype(np.uint8))
    scale = -(-PREVIEW_MIN_WIDTH // image.width)  # small grids are enlarged to be read
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    sheet = Image.new("RGB", (image.width, image.height + LEGEND_HEIGHT))
    sheet.paste(image, (0, 0))
    draw = ImageDraw.Draw(sheet)
    column = image.width // LEGEND_COLUMNS
    for n, (tissue, colour) in enumerate(COLORS.items()):
        x, y = 4 + (n % LEGEND_COLUMNS) * column, image.height + 4 + (n // LEGEND_COLUMNS) * 16
        draw.rectangle((x, y, x + 10, y + 10), fill=colour)
        draw.text((x + 14, y - 1), tissue.display_name, fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def silver_cases(data_dir: Path) -> list[SilverCase]:
    """Silver label maps of the real scans in ``data_dir`` (see ``load_real_cases``)."""

    names = label_names(data_dir)
    cases = []
    for case in load_real_cases(data_dir):
        lungs = structure_mask(case.reference, names, prefixes_of(Tissue.BACKGROUND))
        below = below_diaphragm(lungs, case.volume.geometry.spacing)
        labels = silver_labels(case.volume, case.reference, names, case.tissue, below)
        enhancing = structure_masks(case.reference, names)
        cases.append(SilverCase(case.name, case.volume, labels, enhancing))
    return cases


def write_silver_cases(
    data_dir: Path, out: Path, phases: tuple[ContrastPhase, ...] = ()
) -> dict[str, dict[str, object]]:
    """Write each case as a labelled folder (``ct.nii.gz``, ``labels.nii.gz``) and a preview,
    and a contrast version of it for each of ``phases`` (``NAME-arterial``...)."""
    from model_export.training_pairs import write_nifti_pair

    written: dict[str, dict[str, object]] = {}
    originals = silver_cases(data_dir)
    painted = [c.with_contrast(p) for c in originals for p in phases if p != ContrastPhase.NONE]
    for case in originals + painted:
        folder = out / case.name
        ct, labels = write_nifti_pair(case.volume.hu, case.labels, case.volume.geometry, folder)
        counts = np.bincount(case.labels.ravel(), minlength=len(Tissue))
        written[case.name] = {
            "ct": str(ct),
            "labels": str(labels),
            "preview": str(preview(case.volume, case.labels, folder / "preview.png")),
            "voxels": {Tissue(v).name.lower(): int(n) for v, n in enumerate(counts)},
        }
    return written
