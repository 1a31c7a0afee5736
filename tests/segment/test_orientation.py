"""The engine segments every volume in the orientation the model was trained in."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from habitus.segment.manifest import manifest_for, write_manifest
from habitus.segment.onnx_segmenter import OnnxSegmenter
from habitus.segment.orientation import canonical_flips, flip_axes
from habitus.volume import CTVolume, Geometry
from tests.segment.onnx_models import NORMALIZATION, conv_model

HEAD_FIRST = Geometry(spacing=(2.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0))


def feet_first_ras_like(volume: CTVolume) -> CTVolume:
    """The same scan stored with its slices running foot-ward and its rows to the front."""
    hu = volume.hu[::-1, ::-1, :]
    k, j, _ = volume.shape
    m = volume.geometry.matrix.copy()
    origin = np.asarray(volume.geometry.origin)
    origin = origin + m[:, 0] * 2.0 * (k - 1) + m[:, 1] * 1.0 * (j - 1)
    m[:, 0], m[:, 1] = -m[:, 0], -m[:, 1]
    geometry = Geometry(
        spacing=volume.geometry.spacing,
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=tuple((float(r[0]), float(r[1]), float(r[2])) for r in m),
    )
    return CTVolume(hu=np.ascontiguousarray(hu), geometry=geometry)


def test_flips_name_the_axes_that_run_against_the_canonical_ones() -> None:
    volume = CTVolume(hu=np.zeros((4, 5, 6), np.int16), geometry=HEAD_FIRST)
    assert canonical_flips(volume.geometry) == (False, False, False)
    assert canonical_flips(feet_first_ras_like(volume).geometry) == (True, True, False)
    a = np.arange(24).reshape(2, 3, 4)
    np.testing.assert_array_equal(
        flip_axes(flip_axes(a, (True, False, True)), (True, False, True)), a
    )


def test_a_scan_stored_the_other_way_round_gets_the_same_labels(tmp_path: Path) -> None:
    # a convolutional model with random (asymmetric) kernels: its output depends on orientation
    onnx_path = conv_model(tmp_path / "conv.onnx", channels=4, layers=2, seed=3)
    manifest = write_manifest(
        manifest_for(
            onnx_path,
            model_id="test-conv",
            version="0",
            input_spacing_mm=(2.0, 1.0, 1.0),
            patch_size=(8, 16, 16),
            normalization=NORMALIZATION,
            output_kind="logits",
        ),
        tmp_path / "conv.json",
    )
    rng = np.random.default_rng(0)
    hu = rng.integers(-200, 300, size=(12, 20, 20)).astype(np.int16)
    head_first = CTVolume(hu=hu, geometry=HEAD_FIRST)
    stored_reversed = feet_first_ras_like(head_first)
    segmenter = OnnxSegmenter(manifest, device="cpu")

    labels = segmenter.segment(head_first)
    reversed_labels = segmenter.segment(stored_reversed)
    np.testing.assert_array_equal(reversed_labels[::-1, ::-1, :], labels)
