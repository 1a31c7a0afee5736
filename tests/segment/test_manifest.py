"""The model manifest: format, validation, checksum."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from habitus.errors import ModelError
from habitus.labels import Tissue
from habitus.segment.manifest import (
    ModelManifest,
    Normalization,
    file_sha256,
    load_manifest,
    tissue_label_names,
    verified_model_path,
    write_manifest,
)
from tests.segment.onnx_models import write_intensity_model


def _edit(manifest_path: Path, **changes: object) -> Path:
    data = json.loads(manifest_path.read_text())
    data.update(changes)
    manifest_path.write_text(json.dumps(data))
    return manifest_path


def test_written_manifest_loads_back_equal(tmp_path: Path) -> None:
    path = write_intensity_model(tmp_path, refinement="attenuation", overlap=0.25)
    manifest = load_manifest(path)
    assert manifest.file == "intensity.onnx"
    assert manifest.sha256 == file_sha256(tmp_path / "intensity.onnx")
    assert manifest.labels == tissue_label_names()
    assert manifest.overlap == 0.25
    assert manifest.refinement == "attenuation"
    assert manifest.num_classes == len(Tissue)
    copy = write_manifest(manifest, tmp_path / "copy.json")
    assert load_manifest(copy) == manifest


def test_labels_are_json_object_with_string_keys(tmp_path: Path) -> None:
    data = json.loads(write_intensity_model(tmp_path).read_text())
    assert data["labels"]["3"] == "muscle"
    assert data["manifest_version"] == 1


def test_labels_that_differ_from_tissue_are_refused(tmp_path: Path) -> None:
    path = write_intensity_model(tmp_path)
    labels = tissue_label_names()
    labels[4], labels[5] = "sf", "avf"  # swapped channels
    _edit(path, labels={str(k): v for k, v in labels.items()})
    with pytest.raises(ModelError, match=r"labels must be .*found .*4: 'sf'"):
        load_manifest(path)


def test_missing_label_is_refused(tmp_path: Path) -> None:
    path = write_intensity_model(tmp_path)
    labels = {str(k): v for k, v in tissue_label_names().items() if k != 7}
    _edit(path, labels=labels)
    with pytest.raises(ModelError, match="labels must be"):
        load_manifest(path)


def test_label_names_compare_without_case(tmp_path: Path) -> None:
    path = write_intensity_model(tmp_path)
    _edit(path, labels={str(t.value): t.name for t in Tissue})
    assert load_manifest(path).labels[3] == "MUSCLE"


def test_unknown_key_is_refused_with_its_name(tmp_path: Path) -> None:
    path = _edit(write_intensity_model(tmp_path), patch_szie=[8, 8, 8])
    with pytest.raises(ModelError, match="patch_szie"):
        load_manifest(path)


def test_missing_required_field_is_named(tmp_path: Path) -> None:
    path = write_intensity_model(tmp_path)
    data = json.loads(path.read_text())
    del data["input_spacing_mm"]
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="input_spacing_mm"):
        load_manifest(path)


def test_unreadable_manifest_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        load_manifest(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid"):
        load_manifest(tmp_path / "bad.json")


@pytest.mark.parametrize(
    "changes",
    [
        {"file": "../elsewhere/model.onnx"},
        {"sha256": "abc"},
        {"input_spacing_mm": [0, 1, 1]},
        {"patch_size": [16, 0, 16]},
        {"overlap": 1.0},
        {"batch_size": 0},
        {"output_kind": "softmax"},
        {"normalization": {"clip_hu": [100, -100]}},
        {"normalization": {"scale": "zscore", "mean": 0}},
    ],
)
def test_invalid_values_are_refused(tmp_path: Path, changes: dict[str, object]) -> None:
    path = _edit(write_intensity_model(tmp_path), **changes)
    with pytest.raises(ModelError, match=next(iter(changes))):
        load_manifest(path)


def test_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    path = write_intensity_model(tmp_path)
    manifest = load_manifest(path)
    assert verified_model_path(path, manifest) == tmp_path / "intensity.onnx"
    with (tmp_path / "intensity.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="SHA-256 .* expects"):
        verified_model_path(path, manifest)


def test_missing_model_file_is_refused(tmp_path: Path) -> None:
    path = write_intensity_model(tmp_path)
    (tmp_path / "intensity.onnx").unlink()
    with pytest.raises(ModelError, match="found no such file"):
        verified_model_path(path, load_manifest(path))


def test_write_refuses_wrong_labels(tmp_path: Path) -> None:
    manifest = load_manifest(write_intensity_model(tmp_path))
    wrong = ModelManifest.model_validate({**manifest.model_dump(), "labels": {0: "background"}})
    with pytest.raises(ModelError, match="labels must be"):
        write_manifest(wrong, tmp_path / "wrong.json")


def test_minmax_normalisation_maps_clip_range_to_unit_interval() -> None:
    norm = Normalization(clip_hu=(-1000, 1000), scale="minmax")
    hu = np.array([-3000, -1000, 0, 500, 1000, 3000], dtype=np.int16)
    np.testing.assert_allclose(norm.apply(hu), [0, 0, 0.5, 0.75, 1, 1], atol=1e-6)
    assert norm.apply(hu).dtype == np.float32
    assert norm.value_of(-1024) == 0.0


def test_zscore_normalisation_clips_then_standardises() -> None:
    norm = Normalization(clip_hu=(-200, 300), scale="zscore", mean=50.0, std=100.0)
    hu = np.array([-500, 50, 150, 900], dtype=np.float32)
    np.testing.assert_allclose(norm.apply(hu), [-2.5, 0.0, 1.0, 2.5], atol=1e-6)
