"""Warm start: a network whose weights are those of an exported model (its ONNX file).

The exporter keeps the convolutions' names (``encoders.0.0.weight``) but folds each
GroupNorm's affine weight and bias into anonymous ``Mul`` and ``Add`` initializers
(``onnx::Mul_277``, shape ``(C, 1, 1, 1)``) inside the module's scope
(``/encoders.0/encoders.0.1/Mul``). So an initializer is mapped by its own name when that names
a parameter, else by the scope of the node that uses it: ``Mul`` -> ``<scope>.weight``,
``Add`` -> ``<scope>.bias``. Every parameter and buffer of the network must be assigned exactly
once with the same number of values, or the model is refused (ModelError).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from habitus.errors import ModelError
from habitus.segment.manifest import ModelManifest, load_manifest, verified_model_path
from model_export.network import ARCHITECTURE, NetworkConfig, UNet3D

logger = logging.getLogger(__name__)

_AFFINE = {"Mul": "weight", "Add": "bias"}  # folded GroupNorm: x * weight + bias


@dataclass(frozen=True)
class WarmStart:
    """An exported model's network and where its weights came from."""

    model: UNet3D
    manifest: ModelManifest
    source: dict[str, Any]  # model_id, version, sha256, file: recorded in checkpoint and manifest


def find_manifest(path: Path | str) -> Path:
    """The manifest of ``path``: itself (.json), or the manifest beside an ONNX file naming it."""
    path = Path(path)
    if path.suffix == ".json":
        return path
    if path.suffix != ".onnx":
        raise ModelError(f"--init-from takes a model's manifest (.json) or .onnx file, not {path}")
    beside = path.with_suffix(".json")
    candidates = [beside] + sorted(p for p in path.parent.glob("*.json") if p != beside)
    for candidate in candidates:
        if not candidate.is_file():
            continue
        try:
            manifest = load_manifest(candidate)
        except ModelError:
            continue  # another JSON file (a parity report, an evaluation)
        if manifest.file == path.name:
            return candidate
    raise ModelError(f"found no manifest naming {path.name} in {path.parent}")


def network_config(manifest: ModelManifest) -> NetworkConfig:
    """The network of ``training.network``; refuses a model of another architecture."""
    training = manifest.training or {}
    architecture = training.get("architecture")
    if architecture != ARCHITECTURE:
        raise ModelError(
            f"model {manifest.model_id!r} is a {architecture!r}, "
            f"not this trainer's {ARCHITECTURE!r}"
        )
    network = training.get("network")
    if not isinstance(network, dict):
        raise ModelError(f"model {manifest.model_id!r}: its manifest has no training.network")
    try:
        return NetworkConfig(**network)
    except TypeError as e:
        raise ModelError(f"model {manifest.model_id!r}: training.network {network}: {e}") from e


def onnx_state_dict(onnx_path: Path, model: UNet3D) -> dict[str, torch.Tensor]:
    """The ONNX file's initializers under the names of ``model``'s state dict, checked."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    expected = model.state_dict()
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)

    found: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    for init in graph.initializer:
        key = init.name if init.name in expected else _folded_name(users.get(init.name, []))
        if key is None or key not in expected:
            unmapped.append(init.name)
            continue
        if key in found:
            raise ModelError(f"{onnx_path.name}: parameter {key} is given twice ({init.name})")
        value = torch.from_numpy(np.array(numpy_helper.to_array(init), dtype=np.float32))
        want = expected[key].shape
        # A folded affine is (C, 1, 1, 1) for a parameter of shape (C,): the same values.
        if _squeezed(value.shape) != _squeezed(want):
            raise ModelError(
                f"{onnx_path.name}: {init.name} has shape {tuple(value.shape)}, the network's "
                f"{key} {tuple(want)}: not the same network"
            )
        found[key] = value.reshape(want)
    missing = sorted(set(expected) - set(found))
    if missing or unmapped:
        raise ModelError(
            f"{onnx_path.name} does not hold this network's weights: "
            f"missing {missing or 'none'}, unmatched initializers {unmapped or 'none'}"
        )
    return found


def _squeezed(shape: torch.Size) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _folded_name(nodes: list[Any]) -> str | None:
    """``<module>.weight``/``.bias`` for an initializer only a folded GroupNorm's Mul/Add uses."""
    if len(nodes) != 1 or nodes[0].op_type not in _AFFINE:
        return None
    node = nodes[0]
    scoped = node.name or (node.output[0] if node.output else "")
    parts = scoped.strip("/").split("/")
    if len(parts) < 2:
        return None
    return f"{parts[-2]}.{_AFFINE[node.op_type]}"


def load_warm_start(path: Path | str) -> WarmStart:
    """The network of an exported model (manifest or ONNX file), its weights loaded."""
    manifest_path = find_manifest(path)
    manifest = load_manifest(manifest_path)
    onnx_path = verified_model_path(manifest_path, manifest)  # checks the SHA-256
    model = UNet3D(network_config(manifest))
    model.load_state_dict(onnx_state_dict(onnx_path, model), strict=True)
    model.eval()
    source = {
        "model_id": manifest.model_id,
        "version": manifest.version,
        "sha256": manifest.sha256.lower(),
        "file": str(onnx_path),
    }
    return WarmStart(model=model, manifest=manifest, source=source)


def check_matches(warm: WarmStart, network: NetworkConfig) -> None:
    """Refuse a warm start whose network is not the one the run trains."""
    if warm.model.config != network:
        raise ModelError(
            f"--init-from model {warm.source['model_id']!r} {warm.source['version']} has network "
            f"{warm.model.config.to_dict()}, the run trains {network.to_dict()}: drop --width or "
            "give the model's"
        )


def source_of_checkpoint(path: Path) -> dict[str, Any] | None:
    """The warm start a checkpoint was trained from, or None."""
    data = torch.load(path, map_location="cpu", weights_only=False)
    source = data.get("init_from")
    return dict(source) if isinstance(source, dict) else None


def input_differences(
    manifest: ModelManifest,
    spacing_mm: tuple[float, float, float],
    hu_clip: tuple[float, float],
    hu_mean: float,
    hu_std: float,
) -> list[str]:
    """Where the run feeds the network other inputs than the model was trained on (a warm
    start then begins from features of another grid or scale: allowed, but worth a line)."""
    norm = manifest.normalization
    pairs = {
        "spacing_mm": (tuple(manifest.input_spacing_mm), tuple(spacing_mm)),
        "hu_clip": (tuple(norm.clip_hu), tuple(hu_clip)),
        "hu_mean": (norm.mean, hu_mean),
        "hu_std": (norm.std, hu_std),
    }
    return [f"{k} {model} -> {run}" for k, (model, run) in pairs.items() if model != run]
