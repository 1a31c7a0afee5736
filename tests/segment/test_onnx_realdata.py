"""The engine on a real scan: labels come back aligned with the scan's anatomy.

The model is the tests' intensity classifier, so its fat labels (SF + AVF) are where the HU
is fat-like; compared with TotalSegmentator's fat masks (a silver standard) they overlap well
only if resampling to the model grid and back keeps every axis in place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from habitus.dicom.nifti import load_nifti, read_nifti_kji
from habitus.labels import Tissue
from habitus.segment.onnx_segmenter import OnnxSegmenter
from tests.segment.onnx_models import expected_labels, write_intensity_model


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))


def _fat(labels: np.ndarray) -> np.ndarray:
    return (labels == Tissue.SF) | (labels == Tissue.AVF)


@pytest.mark.parametrize("model_mm", [2.0, 4.5])
def test_fat_labels_line_up_with_the_reference(
    shared_data: Path, tmp_path: Path, model_mm: float
) -> None:
    folder = shared_data / "ts-upper-abdomen"
    volume, _ = load_nifti(folder / "ct.nii.gz")  # 3 mm isotropic
    reference = np.zeros(volume.shape, dtype=bool)
    for name in ("subcutaneous_fat", "torso_fat"):
        mask, _, _ = read_nifti_kji(folder / "tissue_types" / f"{name}.nii.gz")
        reference |= mask > 0
    manifest = write_intensity_model(
        tmp_path, input_spacing_mm=(model_mm,) * 3, patch_size=(32, 64, 64)
    )
    labels = OnnxSegmenter(manifest, device="cpu").segment(volume)

    assert labels.shape == volume.shape
    assert _dice(_fat(labels), _fat(expected_labels(volume.hu))) > 0.85  # native-grid answer
    assert _dice(_fat(labels), reference) > 0.72  # about 0.79; mirrored in y it is 0.45
