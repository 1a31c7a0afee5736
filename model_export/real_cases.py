"""The real scans of the evaluation and the silver labels: loaded with their references.

ts-upper-abdomen (NIfTI, with ``tissue_types``) and ts-petct-dicom (DICOM, reference flipped
onto the CT's order), and the below-the-diaphragm mask both use for visceral fat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import maximum_filter

from habitus.volume import CTVolume
from model_export.training_pairs import canonical_flips, flip_axes


def label_names(data_dir: Path) -> dict[int, str]:
    raw = json.loads((data_dir / "totalsegmentator_total_v2_labels.json").read_text())
    return {int(k): str(v) for k, v in raw.items()}


def below_diaphragm(
    lungs: NDArray[np.bool_], spacing: tuple[float, float, float]
) -> NDArray[np.bool_]:
    """Voxels under the lowest lung voxel of their in-plane column (footprint widened)."""
    depth = lungs.shape[0]
    k = np.arange(depth)[:, None, None]
    lowest = np.where(lungs, k, depth).min(axis=0)  # depth where a column has no lung
    radius = (max(1, round(15.0 / spacing[1])), max(1, round(15.0 / spacing[2])))
    widened = -maximum_filter(-lowest, size=(2 * radius[0] + 1, 2 * radius[1] + 1))
    below: NDArray[np.bool_] = k < widened[None]
    return below


@dataclass
class RealCase:
    name: str
    volume: CTVolume
    reference: NDArray[np.integer]  # TotalSegmentator labels on the volume's grid
    tissue: dict[str, NDArray[np.bool_]] = field(default_factory=dict)


def load_real_cases(data_dir: Path) -> list[RealCase]:
    """The evaluation scans in ``data_dir`` (ts-upper-abdomen, ts-petct-dicom) where present."""
    from habitus.dicom import load_ct
    from habitus.dicom.nifti import read_nifti_kji

    cases = []
    folder = data_dir / "ts-upper-abdomen"
    if (folder / "ct.nii.gz").is_file():
        volume = load_ct(folder / "ct.nii.gz").volume
        reference, _, _ = read_nifti_kji(folder / "reference_total_v2.nii.gz")
        tissue = {
            name: read_nifti_kji(folder / "tissue_types" / f"{name}.nii.gz")[0] > 0
            for name in ("skeletal_muscle", "subcutaneous_fat", "torso_fat")
        }
        cases.append(
            RealCase("ts-upper-abdomen", volume, np.rint(reference).astype(np.int16), tissue)
        )
    folder = data_dir / "ts-petct-dicom"
    if (folder / "series").is_dir():
        volume = load_ct(folder / "series").volume
        reference, ref_geometry, _ = read_nifti_kji(folder / "reference_total_v2.nii.gz")
        ref = flip_axes(np.rint(reference).astype(np.int16), canonical_flips(ref_geometry))
        ref = flip_axes(ref, canonical_flips(volume.geometry))  # into the volume's order
        if ref.shape != volume.shape:
            raise ValueError(f"reference {ref.shape} and CT {volume.shape} grids differ")
        cases.append(RealCase("ts-petct-dicom", volume, ref))
    return cases
