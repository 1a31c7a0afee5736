"""Silver labels of the real scans: every body voxel one class, each reference mapped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from habitus.labels import Tissue
from habitus.metrics.contrast import ContrastPhase
from model_export.real_cases import label_names
from model_export.silver import (
    STRUCTURE_CLASSES,
    SilverCase,
    mapping_table,
    prefixes_of,
    preview,
    silver_cases,
    structure_mask,
)
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def cases(shared_data: Path) -> list[SilverCase]:
    found = silver_cases(shared_data)
    assert {c.name for c in found} == {"ts-upper-abdomen", "ts-petct-dicom"}
    return found


@pytest.fixture(scope="module")
def references(shared_data: Path) -> dict[str, np.ndarray]:
    from model_export.real_cases import load_real_cases

    return {c.name: c.reference for c in load_real_cases(shared_data)}


def _body(hu: np.ndarray) -> np.ndarray:
    """The patient: the largest connected region above -500 HU, holes filled per slice."""
    components, _ = ndi.label(hu > -500)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    body = components == int(np.argmax(sizes))
    return np.stack([ndi.binary_fill_holes(s) for s in body])


def test_every_body_voxel_gets_one_class(cases, references, shared_data) -> None:
    names = label_names(shared_data)
    for case in cases:
        airways = structure_mask(references[case.name], names, prefixes_of(Tissue.BACKGROUND))
        # partial-volume voxels at the skin and lung surfaces (-500..-200 HU) are left out
        body = _body(case.volume.hu) & ~airways & (case.volume.hu > -200)
        unlabelled = np.count_nonzero(case.labels[body] == Tissue.BACKGROUND)
        # soft tissue of the body left background would be a hole in the training labels
        assert unlabelled / np.count_nonzero(body) < 0.001, (case.name, unlabelled)
        assert set(np.unique(case.labels)) <= {int(t) for t in Tissue}


def test_each_reference_structure_gets_its_mapped_class(cases, references, shared_data) -> None:
    names = label_names(shared_data)
    for case in cases:
        reference = references[case.name]
        for tissue, prefixes, _ in STRUCTURE_CLASSES:
            for value, name in names.items():
                if not name.startswith(prefixes):
                    continue
                voxels = case.labels[reference == value]
                if voxels.size:
                    assert np.all(voxels == tissue), (case.name, name, tissue.name)


def test_torso_fat_is_avf_below_the_diaphragm_and_never_above(cases, shared_data) -> None:
    from habitus.dicom.nifti import read_nifti_kji

    (abdomen,) = [c for c in cases if c.name == "ts-upper-abdomen"]
    folder = shared_data / "ts-upper-abdomen" / "tissue_types"
    fat = read_nifti_kji(folder / "torso_fat.nii.gz")[0] > 0
    muscle = read_nifti_kji(folder / "skeletal_muscle.nii.gz")[0] > 0
    labels = abdomen.labels
    assert np.mean(labels[fat] == Tissue.AVF) > 0.8  # the rest lies under organs or skin
    assert np.mean(labels[muscle] == Tissue.MUSCLE) > 0.9


def test_mapping_table_is_the_one_in_the_model_card() -> None:
    card = (REPO_ROOT / "habitus" / "models" / "MODEL_CARD.md").read_text()
    assert mapping_table() in card


def test_preview_is_written_for_a_person(cases, tmp_path) -> None:
    case = min(cases, key=lambda c: c.labels.size)
    path = preview(case.volume, case.labels, tmp_path / "preview.png")
    with Image.open(path) as image:
        assert image.width >= 600  # small grids enlarged to be read
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.reshape(-1, 3).std(axis=0).min() > 10  # not blank


def test_contrast_versions_keep_the_labels_and_enhance_the_vessels(cases) -> None:
    for case in cases:
        painted = case.with_contrast(ContrastPhase.ARTERIAL)
        assert painted.name == f"{case.name}-arterial"
        assert painted.labels is case.labels
        aorta = case.enhancing["aorta"]
        assert np.median(painted.volume.hu[aorta]) >= 250
        assert np.median(painted.volume.hu[aorta]) > np.median(case.volume.hu[aorta]) + 50


def test_evaluation_of_one_held_out_scan_and_its_contrast_versions(shared_data: Path) -> None:
    from model_export.evaluate import run_evaluation

    printed = run_evaluation(
        data_dir=shared_data,
        phantom_seeds=[],
        cases=("ts-upper-abdomen",),
        contrast=(ContrastPhase.ARTERIAL,),
    )
    assert "ts-upper-abdomen-arterial" in printed
    assert "ts-petct-dicom" not in printed  # the held-out scan only
    assert printed.count("rule-based") == 1 and "model habitus-unet3d-cpu" in printed
