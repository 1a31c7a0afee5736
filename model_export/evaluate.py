"""Evaluation: held-out phantoms (exact labels) and real scans (TotalSegmentator references).

Real-scan references are another model's output (a silver standard) and name anatomical
structures, not our classes. They are mapped onto our classes as follows:

* bone: the union of every reference bone (vertebrae, ribs, sacrum, hips, femora, humeri,
  scapulae, claviculae, skull, sternum, costal cartilages) against our BONE;
* skeletal muscle and subcutaneous fat: ``tissue_types/skeletal_muscle`` and
  ``subcutaneous_fat`` of ts-upper-abdomen against MUSCLE and SF. Our SF also holds
  intrathoracic fat, which the reference counts as torso fat: our SF voxels that the
  reference calls torso fat above the diaphragm are left out of that comparison;
* abdominal visceral fat: ``torso_fat`` below the diaphragm against AVF. A voxel is below
  the diaphragm when it lies under the lowest lung voxel of its (row, column) column, the
  lung footprint widened in-plane by 15 mm; columns without lung count as below;
* organs and vessels (liver, spleen, kidneys, stomach, bowel, pancreas, heart, aorta, venae
  cavae, portal and iliac vessels...): the share of their voxels labelled IO;
* lungs and trachea: the share labelled background; spinal cord: the share labelled CNS;
  named muscles (autochthon, iliopsoas, gluteal): the share labelled MUSCLE.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from habitus.labels import TISSUE_CLASSES, Tissue
from habitus.metrics.contrast import ContrastPhase
from habitus.phantoms import random_acquisition, random_spec, render
from habitus.segment.base import Segmenter
from habitus.volume import CTVolume, Geometry
from model_export.overlap import Overlap, coverage, overlap, per_class
from model_export.painted_contrast import enhanced_volume, structure_masks
from model_export.real_cases import RealCase, below_diaphragm, label_names, load_real_cases
from model_export.silver import prefixes_of, structure_mask
from model_export.training_pairs import canonical_flips, flip_axes

# The reference structures behind each figure: the silver-label mapping, one table for both.
BONE_PREFIXES = prefixes_of(Tissue.BONE)
IO_PREFIXES = prefixes_of(Tissue.IO)
MUSCLE_PREFIXES = prefixes_of(Tissue.MUSCLE)
LUNG_PREFIXES = prefixes_of(Tissue.BACKGROUND)
CORD = ("spinal_cord",)

PHANTOM_GRIDS: tuple[tuple[float, float], ...] = ((2.5, 1.4), (5.0, 1.2), (2.0, 1.6), (3.0, 1.5))
PHANTOM_RANGES = ("chest_abdomen_pelvis", "abdomen_pelvis", "upper_abdomen", "neck_to_pelvis")


def segment_canonical(segmenter: Segmenter, volume: CTVolume) -> NDArray[np.uint8]:
    """Segment in the orientation the model was trained in, labels back in the input's."""
    flips = canonical_flips(volume.geometry)
    if not any(flips):
        return segmenter.segment(volume)
    m = volume.geometry.matrix.copy()
    origin = np.asarray(volume.geometry.origin, dtype=np.float64)
    for axis, flip in enumerate(flips):
        if flip:
            origin = origin + m[:, axis] * volume.geometry.spacing[axis] * (volume.shape[axis] - 1)
            m[:, axis] = -m[:, axis]
    geometry = Geometry(
        spacing=volume.geometry.spacing,
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=tuple((float(r[0]), float(r[1]), float(r[2])) for r in m),
    )
    canonical = CTVolume(
        hu=flip_axes(volume.hu, flips),
        geometry=geometry,
        slice_thickness_mm=volume.slice_thickness_mm,
    )
    return flip_axes(segmenter.segment(canonical), flips)


# --- phantoms -----------------------------------------------------------------------------------
def phantom_case(seed: int) -> tuple[CTVolume, NDArray[np.uint8], str]:
    """A held-out phantom on a native-like grid (seed below the training range)."""
    slice_mm, pixel_mm = PHANTOM_GRIDS[seed % len(PHANTOM_GRIDS)]
    scan_range = PHANTOM_RANGES[seed % len(PHANTOM_RANGES)]
    acq = random_acquisition(seed, spacing_mm=(slice_mm, pixel_mm, pixel_mm), scan_range=scan_range)
    spec = random_spec(seed)
    phantom = render(spec, acq)
    description = (
        f"seed {seed}: {scan_range}, {slice_mm} mm slices, {pixel_mm} mm pixels, "
        f"BMI {spec.bmi:.0f}, {spec.sex}, arms {spec.arms}, contrast {spec.contrast}, "
        f"noise {acq.noise_hu:.0f} HU"
    )
    return phantom.volume, phantom.labels, description


def evaluate_phantom(predicted: NDArray[np.uint8], reference: NDArray[np.uint8]) -> dict[str, Any]:
    classes = [int(t) for t in TISSUE_CLASSES]
    scores = per_class(predicted, reference, classes)
    return {Tissue(c).name.lower(): scores[c].to_dict() for c in classes}


# --- real scans ---------------------------------------------------------------------------------
def with_contrast(case: RealCase, phase: ContrastPhase, names: dict[int, str]) -> RealCase:
    """``case`` with ``phase``'s contrast painted into its reference structures."""
    volume = enhanced_volume(case.volume, structure_masks(case.reference, names), phase)
    return RealCase(f"{case.name}-{phase.value}", volume, case.reference, case.tissue)


def evaluate_real(
    case: RealCase, predicted: NDArray[np.uint8], names: dict[int, str]
) -> dict[str, Any]:
    ref = case.reference
    lungs = structure_mask(ref, names, ("lung_",))
    result: dict[str, Any] = {}
    bone = overlap(predicted == Tissue.BONE, structure_mask(ref, names, BONE_PREFIXES))
    result["bone"] = bone.to_dict()
    if case.tissue:
        below = below_diaphragm(lungs, case.volume.geometry.spacing)
        torso_fat = case.tissue["torso_fat"]
        intrathoracic = torso_fat & ~below
        result["muscle"] = overlap(
            predicted == Tissue.MUSCLE, case.tissue["skeletal_muscle"]
        ).to_dict()
        result["sf"] = overlap(
            (predicted == Tissue.SF) & ~intrathoracic, case.tissue["subcutaneous_fat"]
        ).to_dict()
        result["avf"] = overlap((predicted == Tissue.AVF), torso_fat & below).to_dict()
    result["io_coverage"] = coverage(predicted, structure_mask(ref, names, IO_PREFIXES), Tissue.IO)
    result["lung_background"] = coverage(
        predicted, structure_mask(ref, names, LUNG_PREFIXES), Tissue.BACKGROUND
    )
    result["cord_cns"] = coverage(predicted, structure_mask(ref, names, CORD), Tissue.CNS)
    result["named_muscle_coverage"] = coverage(
        predicted, structure_mask(ref, names, MUSCLE_PREFIXES), Tissue.MUSCLE
    )
    return result


# --- running and reporting ----------------------------------------------------------------------
TARGETS_REAL = {
    "bone": 0.90, "muscle": 0.85, "sf": 0.85, "avf": 0.80,
    "io_coverage": 0.90, "lung_background": 0.95, "cord_cns": 0.70,
}  # fmt: skip


def _fmt(values: list[float]) -> str:
    if not values:
        return "      -      "
    a = np.asarray(values)
    return f"{a.mean():.3f} ± {a.std():.3f}"


def phantom_table(results: list[dict[str, Any]], title: str) -> str:
    lines = [title, f"{'class':<30}{'Dice':>16}{'Sensitivity':>16}{'Precision':>16}"]
    means = []
    for tissue in TISSUE_CLASSES:
        key = tissue.name.lower()
        cols = []
        for metric in ("dice", "sensitivity", "precision"):
            vals = [r[key][metric] for r in results if r[key][metric] is not None]
            cols.append(_fmt(vals))
            if metric == "dice" and vals:
                means.append(float(np.mean(vals)))
        lines.append(f"{tissue.display_name:<30}{cols[0]:>16}{cols[1]:>16}{cols[2]:>16}")
    lines.append(
        f"{'mean Dice over the classes':<30}{np.mean(means) if means else float('nan'):>16.3f}"
    )
    return "\n".join(lines)


def real_table(results: dict[str, dict[str, Any]], title: str) -> str:
    width = max([18, *(len(case) + 2 for case in results)])
    lines = [
        title,
        f"{'case':<{width}}{'measure':<24}{'value':>8}{'sens':>8}{'prec':>8}{'target':>8}",
    ]
    for case, result in results.items():
        for key, value in result.items():
            if key.startswith("_"):
                continue
            target = TARGETS_REAL.get(key)
            tgt = f"{target:.2f}" if target is not None else ""
            if isinstance(value, dict):
                dice = value["dice"]
                sens, prec = value["sensitivity"], value["precision"]
                figures = f"{_num(dice):>8}{_num(sens):>8}{_num(prec):>8}"
                lines.append(f"{case:<{width}}{key + ' Dice':<24}{figures}{tgt:>8}")
            else:
                lines.append(f"{case:<{width}}{key:<24}{_num(value):>8}{'':>8}{'':>8}{tgt:>8}")
    return "\n".join(lines)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _segmenters(model: Path | None, include_rules: bool) -> dict[str, Callable[[], Segmenter]]:
    from habitus.segment.loader import find_default_manifest
    from habitus.segment.onnx_segmenter import OnnxSegmenter

    manifest = model or find_default_manifest()
    makers: dict[str, Callable[[], Segmenter]] = {}
    if manifest is not None:
        makers[f"model {Path(manifest).stem}"] = lambda: OnnxSegmenter(manifest, device="cpu")
    if include_rules:
        from habitus.segment.rules import RuleSegmenter

        makers["rule-based"] = RuleSegmenter
    return makers


def run_evaluation(
    model: Path | None = None,
    data_dir: Path | None = None,
    phantom_seeds: list[int] | None = None,
    include_rules: bool = True,
    out_json: Path | None = None,
    record: bool = False,
    contrast: tuple[ContrastPhase, ...] = (),
    cases: tuple[str, ...] = (),
) -> str:
    """Evaluate the model (and the rule-based segmenter) and return the printed tables.

    ``record`` stores a summary in the model's manifest (``training.evaluation``);
    ``contrast`` adds each real scan with that phase painted in (``NAME-PHASE``); ``cases``
    keeps only the real scans named (the held-out ones of a leave-one-scan-out run).
    """
    data_dir = data_dir or Path(__file__).resolve().parents[2] / "shared" / "data"
    seeds = phantom_seeds if phantom_seeds is not None else [1, 2, 3, 4]
    phantoms = [phantom_case(s) for s in seeds]
    real = load_real_cases(data_dir) if data_dir.is_dir() else []
    if cases:
        real = [c for c in real if c.name in cases]
    names = label_names(data_dir) if real else {}
    real += [with_contrast(c, phase, names) for c in real for phase in contrast]
    report: list[str] = []
    figures: dict[str, Any] = {"phantoms": [d for _, _, d in phantoms], "segmenters": {}}
    for label, make in _segmenters(model, include_rules).items():
        segmenter = make()
        phantom_results, seconds = [], []
        for volume, reference, _ in phantoms:
            start = time.perf_counter()
            predicted = segment_canonical(segmenter, volume)
            seconds.append(time.perf_counter() - start)
            phantom_results.append(evaluate_phantom(predicted, reference))
        real_results: dict[str, dict[str, Any]] = {}
        for case in real:
            start = time.perf_counter()
            predicted = segment_canonical(segmenter, case.volume)
            real_results[case.name] = evaluate_real(case, predicted, names)
            real_results[case.name]["_seconds"] = round(time.perf_counter() - start, 1)
        figures["segmenters"][label] = {
            "phantoms": phantom_results,
            "phantom_seconds": [round(s, 1) for s in seconds],
            "real": real_results,
        }
        if phantom_results:
            report.append(
                phantom_table(phantom_results, f"Held-out phantoms (n={len(phantoms)}), {label}")
            )
        if real_results:
            report.append(real_table(real_results, f"Real scans vs TotalSegmentator, {label}"))
    report.append("Phantoms: " + "; ".join(d for _, _, d in phantoms))
    if out_json is not None:
        out_json.write_text(json.dumps(figures, indent=2, default=float) + "\n", encoding="utf-8")
    if record and model is not None:
        from model_export.export import record_evaluation

        label = f"model {Path(model).stem}"
        record_evaluation(model, condensed(figures["segmenters"][label], figures["phantoms"]))
    return "\n\n".join(report)


def condensed(figures: dict[str, Any], phantoms: list[str]) -> dict[str, Any]:
    """Mean Dice per class on the phantoms and the real-scan figures, rounded, for a manifest."""
    out: dict[str, Any] = {"command": "python -m model_export evaluate", "phantoms": phantoms}
    per_class_dice: dict[str, float] = {}
    for tissue in TISSUE_CLASSES:
        key = tissue.name.lower()
        values = [r[key]["dice"] for r in figures["phantoms"] if r[key]["dice"] is not None]
        if values:
            per_class_dice[key] = round(float(np.mean(values)), 3)
    out["phantom_dice"] = per_class_dice
    real: dict[str, dict[str, float | None]] = {}
    for case, result in figures["real"].items():
        real[case] = {
            key: (
                round(v["dice"], 3)
                if isinstance(v, dict) and v["dice"] is not None
                else None
                if isinstance(v, dict)
                else (round(v, 3) if v is not None else None)
            )
            for key, v in result.items()
            if not key.startswith("_")
        }
    out["real_scans"] = real
    return out


def summary(overlaps: dict[int, Overlap]) -> dict[str, float | None]:
    """Dice of each class by name (for manifests and model cards)."""
    return {Tissue(c).name.lower(): o.dice for c, o in overlaps.items()}
