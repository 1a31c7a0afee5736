"""The canonical (superior, posterior, left) view and its way back: the rules and the model
see every volume in it, whatever order and sense the scan was stored in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from habitus.errors import GeometryRefused
from habitus.segment.manifest import manifest_for, write_manifest
from habitus.segment.onnx_segmenter import OnnxSegmenter
from habitus.segment.orientation import CanonicalFrame, canonical_flips, flip_axes
from habitus.volume import CTVolume, Geometry
from tests.segment.onnx_models import NORMALIZATION, conv_model

AXIAL = ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0))
HEAD_FIRST = Geometry(spacing=(2.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0))


def test_axial_head_up_series_is_already_canonical() -> None:
    frame = CanonicalFrame.of(Geometry(spacing=(2.0, 0.8, 0.7), origin=(0, 0, 0), direction=AXIAL))
    assert frame.source_axes == (0, 1, 2)
    assert frame.flipped == (False, False, False)
    assert frame.spacing == (2.0, 0.8, 0.7)


def test_nifti_like_ras_order_is_flipped_back() -> None:
    # k towards the head, j towards the front (-y), i towards the patient's right (-x).
    direction = ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0))
    frame = CanonicalFrame.of(
        Geometry(spacing=(3.0, 3.0, 3.0), origin=(0, 0, 0), direction=direction)
    )
    assert frame.source_axes == (0, 1, 2)
    assert frame.flipped == (False, True, True)


def test_coronal_series_is_transposed_and_maps_back_exactly() -> None:
    # k -> +y (back), j -> -z (rows run head to feet), i -> +x (left).
    direction = ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, -1.0, 0.0))
    geometry = Geometry(spacing=(1.5, 1.0, 0.5), origin=(0, 0, 0), direction=direction)
    frame = CanonicalFrame.of(geometry)
    assert frame.source_axes == (1, 0, 2)
    assert frame.flipped == (True, False, False)
    assert frame.spacing == (1.0, 1.5, 0.5)

    source = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    canonical = frame.to_canonical(source)
    assert canonical.shape == (5, 4, 6)
    # Canonical slice 0 is the lowest: the last source row (rows run head to feet).
    assert np.array_equal(canonical[0], source[:, -1, :])
    assert np.array_equal(frame.from_canonical(canonical), source)


def test_oblique_axes_are_refused_with_the_cosines() -> None:
    c = np.cos(np.pi / 4)
    direction = ((0.0, 0.0, 1.0), (0.0, c, c), (0.0, -c, c))
    with pytest.raises(GeometryRefused, match="direction cosines"):
        CanonicalFrame.of(Geometry(spacing=(1, 1, 1), origin=(0, 0, 0), direction=direction))


def test_flips_alone_are_refused_for_axes_out_of_order() -> None:
    # rows along x, columns along y: flipping cannot make this canonical, transposing can
    direction = ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0))
    geometry = Geometry(spacing=(1.0, 1.0, 1.0), origin=(0, 0, 0), direction=direction)
    assert CanonicalFrame.of(geometry).source_axes == (0, 2, 1)
    with pytest.raises(GeometryRefused, match="axial volume"):
        canonical_flips(geometry)


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


def in_plane_transposed(volume: CTVolume) -> CTVolume:
    """The same scan stored with its rows running right to left and its columns to the back."""
    m = volume.geometry.matrix[:, [0, 2, 1]]
    spacing = volume.geometry.spacing
    geometry = Geometry(
        spacing=(spacing[0], spacing[2], spacing[1]),
        origin=volume.geometry.origin,
        direction=tuple((float(r[0]), float(r[1]), float(r[2])) for r in m),
    )
    return CTVolume(hu=np.ascontiguousarray(volume.hu.transpose(0, 2, 1)), geometry=geometry)


def _conv_manifest(tmp_path: Path) -> Path:
    # a convolutional model with random (asymmetric) kernels: its output depends on orientation
    onnx_path = conv_model(tmp_path / "conv.onnx", channels=4, layers=2, seed=3)
    return write_manifest(
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


def test_a_scan_stored_the_other_way_round_gets_the_same_labels(tmp_path: Path) -> None:
    manifest = _conv_manifest(tmp_path)
    rng = np.random.default_rng(0)
    hu = rng.integers(-200, 300, size=(12, 20, 20)).astype(np.int16)
    head_first = CTVolume(hu=hu, geometry=HEAD_FIRST)
    stored_reversed = feet_first_ras_like(head_first)
    segmenter = OnnxSegmenter(manifest, device="cpu")

    labels = segmenter.segment(head_first)
    reversed_labels = segmenter.segment(stored_reversed)
    np.testing.assert_array_equal(reversed_labels[::-1, ::-1, :], labels)


def test_a_scan_with_transposed_rows_and_columns_gets_the_same_labels(tmp_path: Path) -> None:
    segmenter = OnnxSegmenter(_conv_manifest(tmp_path), device="cpu")
    rng = np.random.default_rng(1)
    hu = rng.integers(-200, 300, size=(12, 20, 24)).astype(np.int16)
    head_first = CTVolume(hu=hu, geometry=HEAD_FIRST)

    labels = segmenter.segment(head_first)
    transposed_labels = segmenter.segment(in_plane_transposed(head_first))
    np.testing.assert_array_equal(transposed_labels.transpose(0, 2, 1), labels)
