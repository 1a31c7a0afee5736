"""Export a checkpoint to ONNX with its manifest, and check ONNX Runtime against PyTorch."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from habitus.segment.manifest import load_manifest, manifest_for, write_manifest
from model_export.network import ARCHITECTURE, UNet3D, count_parameters, patch_multiple
from model_export.stream import normalise
from model_export.train import TrainConfig, model_from_checkpoint

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 17


def export_onnx(
    model: UNet3D, path: Path, patch_size: tuple[int, int, int], opset: int = OPSET
) -> Path:
    """Write ``model`` as ONNX: input (batch, 1, depth, h, w), batch and depth dynamic."""
    model = model.eval().to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    example = torch.zeros((1, 1, *patch_size), dtype=torch.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about the legacy exporter
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={
                INPUT_NAME: {0: "batch", 2: "depth"},
                OUTPUT_NAME: {0: "batch", 2: "depth"},
            },
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return path


@dataclass(frozen=True)
class Parity:
    """ONNX Runtime against PyTorch on the same inputs."""

    patches: int
    max_abs_prob_diff: float
    argmax_agreement: float  # share of voxels with the same class

    def to_dict(self) -> dict[str, Any]:
        return {
            "patches": self.patches,
            "max_abs_prob_diff": self.max_abs_prob_diff,
            "argmax_agreement": self.argmax_agreement,
        }


def check_parity(model: UNet3D, onnx_path: Path, inputs: np.ndarray) -> Parity:
    """Compare softmax probabilities of ``inputs`` (N, 1, d, h, w; normalised) both ways."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    model = model.eval()
    worst = 0.0
    same = 0
    total = 0
    for patch in inputs:
        batch = patch[None].astype(np.float32)
        with torch.no_grad():
            expected = torch.softmax(model(torch.from_numpy(batch)), dim=1).numpy()
        (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        got = torch.softmax(torch.from_numpy(np.asarray(logits)), dim=1).numpy()
        worst = max(worst, float(np.abs(got - expected).max()))
        same += int((got.argmax(1) == expected.argmax(1)).sum())
        total += int(expected[:, 0].size)
    return Parity(patches=len(inputs), max_abs_prob_diff=worst, argmax_agreement=same / total)


def parity_inputs(config: TrainConfig, patch_size: tuple[int, int, int], count: int) -> np.ndarray:
    """Normalised patches of held-out phantoms (seeds below the training range)."""
    from model_export.dataset import PatchSampler, training_phantom

    volumes = [training_phantom(90_000 + i, config.spacing_mm) for i in range(2)]
    sampler = PatchSampler(volumes, patch_size, None, np.random.default_rng(7))
    patches = np.stack([sampler.sample()[0] for _ in range(count)])[:, None]
    return normalise(patches, config).numpy()


def export_model(
    checkpoint: Path,
    out_dir: Path,
    *,
    model_id: str,
    version: str,
    description: str,
    overlap: float = 0.25,
    batch_size: int = 1,
    patch_size: tuple[int, int, int] | None = None,
    refinement: str | None = "attenuation",
    parity_patches: int = 4,
    evaluation: dict[str, Any] | None = None,
    training_notes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """ONNX + manifest + parity report in ``out_dir``; returns the parity and file paths."""
    model, config, step = model_from_checkpoint(checkpoint)
    patch = tuple(patch_size or config.patch_size)
    multiple = patch_multiple()
    if any(p % m for p, m in zip(patch, multiple, strict=True)):
        raise ValueError(f"patch size must be a multiple of {multiple}, found {patch}")
    onnx_path = export_onnx(model, out_dir / f"{model_id}.onnx", patch)  # type: ignore[arg-type]
    parity = check_parity(model, onnx_path, parity_inputs(config, patch, parity_patches))  # type: ignore[arg-type]
    training: dict[str, Any] = {
        "framework": f"torch {torch.__version__}",
        "architecture": ARCHITECTURE,
        "network": config.network.to_dict(),
        "parameters": count_parameters(model),
        "steps": step,
        "recipe": {
            k: v
            for k, v in config.to_dict().items()
            if k not in ("network", "threads", "checkpoint_every")
        },
        "parity": parity.to_dict(),
    }
    if training_notes:
        training.update(training_notes)
    if evaluation:
        training["evaluation"] = evaluation
    manifest = manifest_for(
        onnx_path,
        model_id=model_id,
        version=version,
        description=description,
        input_spacing_mm=config.spacing_mm,
        patch_size=patch,
        overlap=overlap,
        batch_size=batch_size,
        normalization={
            "clip_hu": list(config.hu_clip),
            "scale": "zscore",
            "mean": config.hu_mean,
            "std": config.hu_std,
        },
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        output_kind="logits",
        min_ort_version="1.18",
        refinement=refinement,
        training=training,
    )
    manifest_path = write_manifest(manifest, out_dir / f"{model_id}.json")
    parity_path = out_dir / f"{model_id}.parity.json"
    parity_path.write_text(json.dumps(parity.to_dict(), indent=2) + "\n", encoding="utf-8")
    return {
        "onnx": str(onnx_path),
        "manifest": str(manifest_path),
        "parity_report": str(parity_path),
        "parity": parity.to_dict(),
        "onnx_bytes": onnx_path.stat().st_size,
    }


def record_evaluation(manifest_path: Path, evaluation: dict[str, Any]) -> Path:
    """Store evaluation figures under ``training.evaluation`` of an existing manifest.

    The ONNX file is untouched, so its checksum in the manifest stays valid.
    """
    manifest = load_manifest(manifest_path)
    training = {**manifest.training, "evaluation": evaluation}
    return write_manifest(manifest.model_copy(update={"training": training}), manifest_path)
