"""Small ONNX models built in the tests (onnx.helper, no torch), with their manifests.

``write_intensity_model`` makes a network whose logit for class c is
``-sharpness * (x - centre_c) ** 2`` of the normalised input x at each voxel, so the expected
label of a voxel is the class whose HU centre is nearest to its HU. ``write_conv_model`` makes
a stack of 3x3x3 convolutions with the cost profile of a small U-Net level, for benchmarks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from habitus.labels import Tissue
from habitus.segment.manifest import Normalization, manifest_for, write_manifest

NORMALIZATION = Normalization(clip_hu=(-1000.0, 1000.0), scale="minmax")

# One HU centre per class, far enough apart for the nearest centre to be unambiguous.
CLASS_CENTRES_HU: dict[Tissue, float] = {
    Tissue.BACKGROUND: -900.0,
    Tissue.SKIN: -500.0,
    Tissue.BONE: 700.0,
    Tissue.MUSCLE: 40.0,
    Tissue.AVF: -60.0,
    Tissue.SF: -150.0,
    Tissue.IO: 150.0,
    Tissue.CNS: 300.0,
}

Dim = int | str


def expected_labels(hu: NDArray[Any]) -> NDArray[np.uint8]:
    """The label the intensity model gives each voxel: the class of the nearest HU centre."""
    centres = np.array([CLASS_CENTRES_HU[t] for t in Tissue], dtype=np.float64)
    distance = np.abs(np.asarray(hu, dtype=np.float64)[..., np.newaxis] - centres)
    return np.argmin(distance, axis=-1).astype(np.uint8)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def intensity_model(
    path: Path,
    *,
    sharpness: float = 400.0,
    probabilities: bool = False,
    batch: Dim = "N",
    spatial: tuple[Dim, Dim, Dim] = ("D", "H", "W"),
    input_name: str = "input",
    output_name: str = "output",
) -> Path:
    centres = np.array(
        [NORMALIZATION.value_of(CLASS_CENTRES_HU[t]) for t in Tissue], dtype=np.float32
    ).reshape(1, len(Tissue), 1, 1, 1)
    logits_name = "logits" if probabilities else output_name
    nodes = [
        helper.make_node("Sub", [input_name, "centres"], ["diff"]),
        helper.make_node("Mul", ["diff", "diff"], ["squared"]),
        helper.make_node("Mul", ["squared", "minus_sharpness"], [logits_name]),
    ]
    if probabilities:
        nodes.append(helper.make_node("Softmax", ["logits"], [output_name], axis=1))
    graph = helper.make_graph(
        nodes,
        "intensity_classifier",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 1, *spatial])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, 8, *spatial])],
        initializer=[
            numpy_helper.from_array(centres, "centres"),
            numpy_helper.from_array(np.array(-sharpness, dtype=np.float32), "minus_sharpness"),
        ],
    )
    return _save(graph, path)


def conv_model(path: Path, *, channels: int = 16, layers: int = 3, seed: int = 0) -> Path:
    """3x3x3 convolutions with ReLU, 1 -> channels -> ... -> 8 logits; dynamic batch and size."""
    rng = np.random.default_rng(seed)
    nodes, initializers = [], []
    previous, width = "input", 1
    for layer in range(layers):
        out_width = 8 if layer == layers - 1 else channels
        w = rng.normal(0, (2.0 / (27 * width)) ** 0.5, (out_width, width, 3, 3, 3))
        initializers += [
            numpy_helper.from_array(w.astype(np.float32), f"w{layer}"),
            numpy_helper.from_array(np.zeros(out_width, np.float32), f"b{layer}"),
        ]
        name = "output" if layer == layers - 1 else f"conv{layer}"
        nodes.append(
            helper.make_node("Conv", [previous, f"w{layer}", f"b{layer}"], [name], pads=[1] * 6)
        )
        if layer < layers - 1:
            nodes.append(helper.make_node("Relu", [name], [f"relu{layer}"]))
            name = f"relu{layer}"
        previous, width = name, out_width
    dims: list[Dim] = ["N", 1, "D", "H", "W"]
    graph = helper.make_graph(
        nodes,
        "conv_stack",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 8, "D", "H", "W"])],
        initializer=initializers,
    )
    return _save(graph, path)


def write_intensity_model(
    folder: Path, name: str = "intensity", model_kwargs: dict[str, Any] | None = None, **fields: Any
) -> Path:
    """``<folder>/<name>.onnx`` + its manifest; returns the manifest path."""
    onnx_path = intensity_model(folder / f"{name}.onnx", **(model_kwargs or {}))
    values: dict[str, Any] = {
        "model_id": f"test-{name}",
        "version": "0.0.1",
        "description": "per-voxel intensity classifier for tests",
        "input_spacing_mm": (1.0, 1.0, 1.0),
        "patch_size": (16, 16, 16),
        "overlap": 0.5,
        "batch_size": 2,
        "normalization": NORMALIZATION,
        "output_kind": "probabilities" if (model_kwargs or {}).get("probabilities") else "logits",
        "min_ort_version": "1.16",
        "training": {"data": "none: fixed weights"},
        "validated": True,
    }
    values.update(fields)
    return write_manifest(manifest_for(onnx_path, **values), folder / f"{name}.json")
