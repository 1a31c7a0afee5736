"""The ONNX segmenter end to end, with small models built by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from scipy.ndimage import binary_erosion

from habitus.errors import ModelError
from habitus.labels import Tissue
from habitus.segment.base import Segmenter
from habitus.segment.onnx_segmenter import OnnxSegmenter
from habitus.volume import CTVolume, Geometry
from tests.segment.conftest import block_volume
from tests.segment.onnx_models import expected_labels, intensity_model, write_intensity_model


def test_labels_on_the_native_grid_are_exact_when_grids_match(
    tmp_path: Path, blocks_native: tuple[CTVolume, np.ndarray]
) -> None:
    volume, truth = blocks_native
    segmenter = OnnxSegmenter(write_intensity_model(tmp_path), device="cpu")
    labels = segmenter.segment(volume)
    assert labels.shape == volume.shape and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, truth)
    np.testing.assert_array_equal(labels, expected_labels(volume.hu))


def test_is_a_segmenter_and_describes_itself(tmp_path: Path) -> None:
    path = write_intensity_model(tmp_path, version="2.1.0")
    segmenter: Segmenter = OnnxSegmenter(path, device="cpu")
    info = segmenter.info
    assert (info.model_id, info.version, info.kind, info.device) == (
        "test-intensity",
        "2.1.0",
        "onnx",
        "cpu",
    )
    assert info.sha256 == json.loads(path.read_text())["sha256"]


@pytest.mark.parametrize("spacing", [(2.0, 0.5, 0.7), (0.5, 2.0, 1.6)])
def test_other_scan_spacings_come_back_on_the_scan_grid(
    tmp_path: Path, spacing: tuple[float, float, float]
) -> None:
    """Coarser and finer scans than the 1 mm model grid: correct away from block edges."""
    volume, truth = block_volume((26, 44, 35), block=11, spacing=spacing, seed=4)
    labels = OnnxSegmenter(write_intensity_model(tmp_path), device="cpu").segment(volume)
    assert labels.shape == volume.shape
    interior = np.zeros(truth.shape, dtype=bool)
    for c in np.unique(truth):
        interior |= binary_erosion(truth == c, iterations=4, border_value=1)
    assert interior.sum() > 0.1 * truth.size
    np.testing.assert_array_equal(labels[interior], truth[interior])
    assert np.mean(labels == truth) > 0.8


def test_volume_smaller_than_a_patch(tmp_path: Path) -> None:
    volume, truth = block_volume((3, 40, 5), block=3, spacing=(1.0, 1.0, 1.0), seed=5)
    labels = OnnxSegmenter(write_intensity_model(tmp_path), device="cpu").segment(volume)
    np.testing.assert_array_equal(labels, truth)


def test_probability_output_gives_the_same_labels_as_logits(
    tmp_path: Path, blocks_native: tuple[CTVolume, np.ndarray]
) -> None:
    volume, truth = blocks_native
    path = write_intensity_model(tmp_path, "probs", model_kwargs={"probabilities": True})
    assert json.loads(path.read_text())["output_kind"] == "probabilities"
    np.testing.assert_array_equal(OnnxSegmenter(path, device="cpu").segment(volume), truth)


def test_model_with_fixed_batch_and_patch(
    tmp_path: Path, blocks_native: tuple[CTVolume, np.ndarray]
) -> None:
    volume, truth = blocks_native
    kwargs = {"batch": 3, "spatial": (16, 16, 16)}
    segmenter = OnnxSegmenter(
        write_intensity_model(tmp_path, model_kwargs=kwargs, batch_size=1), device="cpu"
    )
    assert segmenter.batch_size == 3  # the graph's fixed batch wins; the last call is padded
    np.testing.assert_array_equal(segmenter.segment(volume), truth)


def test_patch_that_the_graph_cannot_take_is_refused(tmp_path: Path) -> None:
    path = write_intensity_model(
        tmp_path, model_kwargs={"spatial": (16, 16, 16)}, patch_size=(8, 16, 16)
    )
    with pytest.raises(ModelError, match=r"does not fit the manifest's patch \[8, 16, 16\]"):
        OnnxSegmenter(path, device="cpu")


def test_wrong_io_names_are_refused(tmp_path: Path) -> None:
    path = write_intensity_model(tmp_path, model_kwargs={"input_name": "image"})
    with pytest.raises(ModelError, match=r"names input 'input'.*inputs \['image'\]"):
        OnnxSegmenter(path, device="cpu")


def test_custom_io_names_from_the_manifest(
    tmp_path: Path, blocks_native: tuple[CTVolume, np.ndarray]
) -> None:
    volume, truth = blocks_native
    path = write_intensity_model(
        tmp_path,
        model_kwargs={"input_name": "ct", "output_name": "seg"},
        input_name="ct",
        output_name="seg",
    )
    np.testing.assert_array_equal(OnnxSegmenter(path, device="cpu").segment(volume), truth)


def test_checksum_mismatch_refuses_to_load(tmp_path: Path) -> None:
    path = write_intensity_model(tmp_path)
    intensity_model(tmp_path / "intensity.onnx", sharpness=1.0)  # replaced after the manifest
    with pytest.raises(ModelError, match="SHA-256"):
        OnnxSegmenter(path)


def test_labels_mismatch_refuses_to_load(tmp_path: Path) -> None:
    path = write_intensity_model(tmp_path)
    data = json.loads(path.read_text())
    data["labels"]["7"] = "brain"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="labels must be"):
        OnnxSegmenter(path)


def test_newer_onnxruntime_requirement_is_refused(tmp_path: Path) -> None:
    path = write_intensity_model(tmp_path, min_ort_version="99.0")
    with pytest.raises(ModelError, match=r"needs onnxruntime >= 99\.0, found"):
        OnnxSegmenter(path)


def test_unknown_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="device must be"):
        OnnxSegmenter(write_intensity_model(tmp_path), device="tpu")  # type: ignore[arg-type]


@pytest.mark.skipif(
    "CUDAExecutionProvider" in onnxruntime.get_available_providers(),
    reason="CUDA is available here: no fallback to observe",
)
@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_falls_back_to_cpu_without_cuda(
    tmp_path: Path, blocks_native: tuple[CTVolume, np.ndarray], device: str
) -> None:
    volume, truth = blocks_native
    segmenter = OnnxSegmenter(write_intensity_model(tmp_path), device=device)  # type: ignore[arg-type]
    assert segmenter.info.device == "cpu"
    np.testing.assert_array_equal(segmenter.segment(volume), truth)


def test_session_is_reused_and_progress_is_reported(
    tmp_path: Path, blocks_native: tuple[CTVolume, np.ndarray]
) -> None:
    volume, truth = blocks_native
    segmenter = OnnxSegmenter(write_intensity_model(tmp_path), device="cpu", threads=1)
    session = segmenter._session
    fractions: list[float] = []
    for _ in range(2):
        fractions.clear()
        np.testing.assert_array_equal(segmenter.segment(volume, fractions.append), truth)
    assert segmenter._session is session
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions) and len(fractions) > 3
    assert {"resample_in", "inference", "accumulate", "argmax", "resample_out"} <= set(
        segmenter.last_timings
    )


def test_attenuation_refinement_runs_when_the_manifest_asks(tmp_path: Path) -> None:
    """A thin outer layer lost on the coarse grid comes back as skin at native resolution."""
    hu = np.full((6, 48, 48), -1000, dtype=np.int16)
    yy, xx = np.mgrid[:48, :48]
    r = np.hypot(yy - 23.5, xx - 23.5)
    hu[:, r < 20] = -150  # subcutaneous-fat HU centre of the test model
    hu[:, r < 12] = 40  # muscle
    volume = CTVolume(hu=hu, geometry=Geometry(spacing=(2.0, 0.5, 0.5), origin=(0, 0, 0)))
    plain = OnnxSegmenter(write_intensity_model(tmp_path, "plain"), device="cpu")
    refined = OnnxSegmenter(
        write_intensity_model(tmp_path, "refined", refinement="attenuation"), device="cpu"
    )
    without, with_ = plain.segment(volume), refined.segment(volume)
    edge = (r < 20) & (r >= 18.5)  # within about 1 mm of the body surface
    assert np.mean(without[:, edge] == Tissue.SKIN) < 0.5  # partial volume only, gaps
    assert np.all(with_[:, edge] == Tissue.SKIN)
    assert np.all(with_[:, r < 12] == Tissue.MUSCLE)
