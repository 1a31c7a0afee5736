"""The 3D U-Net, run by onnxruntime: model grid, sliding windows, labels on the scan's grid.

onnxruntime is imported when a segmenter is built, not when this module is imported, so that
installations without it (the API image) can still import the package.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from habitus.errors import InputRefused, ModelError
from habitus.progress import StepCallback
from habitus.segment.base import ModelInfo
from habitus.segment.manifest import ModelManifest, load_manifest, verified_model_path
from habitus.segment.orientation import CanonicalFrame
from habitus.segment.refine import refine_by_attenuation
from habitus.segment.resample import (
    argmax_labels,
    grid_mapping,
    labels_on_native_grid,
    resample_to_model,
)
from habitus.segment.sliding_window import sliding_window_inference
from habitus.volume import CTVolume

logger = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
AIR_HU = -1024.0

# Share of the segment stage's progress at the end of resampling in and of inference; the rest
# is softmax, labels back on the scan grid and refinement.
_RESAMPLE_IN, _INFERENCE = 0.05, 0.85


def _version_tuple(version: str) -> tuple[int, ...]:
    """(1, 18, 0) from "1.18.0", "1.18" or "1.18.0rc1": the leading numeric parts."""
    parts = []
    for piece in version.split("."):
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def softmax_classes(scores: NDArray[np.float32], slab: int = 8) -> NDArray[np.float32]:
    """Softmax over the class axis of (C, D, H, W) scores, in place, a few slices at a time."""
    for z0 in range(0, scores.shape[1], slab):
        x = scores[:, z0 : z0 + slab]
        x -= x.max(axis=0, keepdims=True)
        np.exp(x, out=x)
        x /= x.sum(axis=0, keepdims=True)
    return scores


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise ModelError(
            "the ONNX segmenter needs onnxruntime, which is not installed; install "
            "habitus[cpu] (or onnxruntime-gpu), or use the rule-based segmenter"
        ) from e
    return onnxruntime


class OnnxSegmenter:
    """Segments a CT volume with an ONNX model described by a manifest (Segmenter protocol).

    The model file is checked against the manifest's SHA-256 and the session is created once;
    ``segment`` can be called any number of times. ``device="auto"`` uses CUDA when
    onnxruntime offers it and falls back to the CPU; ``info.device`` says which ran.

    One call: the HU are resampled to the model grid and normalised; Gaussian-weighted
    sliding windows run in batches; logits are blended across patches (as nnU-Net does) and
    turned into probabilities by one softmax on the model grid, while a model that outputs
    probabilities has them blended directly; the argmax of the trilinearly upsampled
    probabilities gives uint8 labels on the scan's own grid, refined by attenuation when the
    manifest asks for it.
    """

    def __init__(
        self, manifest_path: Path | str, device: Device = "auto", threads: int | None = None
    ) -> None:
        if device not in ("auto", "cpu", "cuda"):
            raise ModelError(f"device must be auto, cpu or cuda, found {device!r}")
        ort = _import_onnxruntime()
        self._manifest_path = Path(manifest_path)
        self._manifest = load_manifest(self._manifest_path)
        manifest = self._manifest
        if manifest.min_ort_version and _version_tuple(ort.__version__) < _version_tuple(
            manifest.min_ort_version
        ):
            raise ModelError(
                f"model {manifest.model_id!r} needs onnxruntime >= {manifest.min_ort_version}, "
                f"found {ort.__version__}"
            )
        model_path = verified_model_path(self._manifest_path, manifest)

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = self._providers(device, ort.get_available_providers())
        try:
            self._session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=providers
            )
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"onnxruntime cannot load {model_path}: {e}") from e
        used = self._session.get_providers()
        self._device = "cuda" if CUDA in used else "cpu"
        if device == "cuda" and self._device != "cuda":
            logger.warning(
                "CUDA was requested but onnxruntime offers %s; model %s runs on the CPU",
                ", ".join(used),
                manifest.model_id,
            )
        self._fixed_batch = self._check_io()
        logger.info(
            "loaded model %s %s from %s on %s",
            manifest.model_id,
            manifest.version,
            model_path,
            self._device,
        )
        self.last_timings: dict[str, float] = {}
        """Seconds per step of the latest ``segment`` call (for reports and benchmarks)."""

    @staticmethod
    def _providers(device: Device, available: list[str]) -> list[str]:
        if device != "cpu" and CUDA in available:
            return [CUDA, CPU]
        return [CPU]

    def _check_io(self) -> int | None:
        """Check the session's input and output against the manifest; return a fixed batch."""
        m = self._manifest
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        if m.input_name not in inputs or m.output_name not in outputs:
            raise ModelError(
                f"model {m.model_id!r}: the manifest names input {m.input_name!r} and output "
                f"{m.output_name!r}; the ONNX graph has inputs {sorted(inputs)} and outputs "
                f"{sorted(outputs)}"
            )
        in_shape = list(inputs[m.input_name].shape)
        out_shape = list(outputs[m.output_name].shape)
        if len(in_shape) != 5 or len(out_shape) != 5:
            raise ModelError(
                f"model {m.model_id!r}: expected 5-D input and output (batch, channel, d, h, w), "
                f"found input {in_shape} and output {out_shape}"
            )
        expected_in = [None, 1, *m.patch_size]
        expected_out = [None, m.num_classes, *m.patch_size]
        for what, shape, expected in (
            ("input", in_shape, expected_in),
            ("output", out_shape, expected_out),
        ):
            for axis in range(1, 5):
                if isinstance(shape[axis], int) and shape[axis] != expected[axis]:
                    raise ModelError(
                        f"model {m.model_id!r}: {what} shape {shape} does not fit the "
                        f"manifest's patch {list(m.patch_size)} and {m.num_classes} classes "
                        f"(expected {expected[1:]} after the batch axis)"
                    )
        return in_shape[0] if isinstance(in_shape[0], int) else None

    @property
    def manifest(self) -> ModelManifest:
        return self._manifest

    @property
    def info(self) -> ModelInfo:
        m = self._manifest
        return ModelInfo(
            model_id=m.model_id,
            version=m.version,
            kind="onnx",
            description=m.description,
            sha256=m.sha256.lower(),
            device=self._device,
        )

    @property
    def batch_size(self) -> int:
        return self._fixed_batch or self._manifest.batch_size

    def predict_batch(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """The network's output (B, C, d, h, w) for normalised patches (B, 1, d, h, w)."""
        m = self._manifest
        n = batch.shape[0]
        if self._fixed_batch is not None and n < self._fixed_batch:
            filler = np.zeros((self._fixed_batch - n, *batch.shape[1:]), dtype=np.float32)
            batch = np.concatenate([batch, filler])
        (output,) = self._session.run([m.output_name], {m.input_name: batch})
        return np.asarray(output, dtype=np.float32)[:n]

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.last_timings[step] = self.last_timings.get(step, 0.0) + (
                time.perf_counter() - start
            )

    def segment(self, volume: CTVolume, progress: StepCallback | None = None) -> NDArray[np.uint8]:
        """Labels (habitus.labels.Tissue values) on ``volume``'s own grid."""
        m = self._manifest
        report = progress or (lambda fraction: None)
        if volume.hu.ndim != 3 or min(volume.hu.shape) < 1:
            raise InputRefused(f"expected a non-empty 3-D volume, found shape {volume.hu.shape}")
        self.last_timings = {}
        report(0.0)
        # the model sees the orientation it was trained in (flips alone for an axial volume);
        # the labels go back as they came
        frame = CanonicalFrame.of(volume.geometry)
        hu = np.ascontiguousarray(frame.to_canonical(volume.hu))
        shape = (hu.shape[0], hu.shape[1], hu.shape[2])

        with self._timed("resample_in"):
            mapping = grid_mapping(shape, frame.spacing, m.input_spacing_mm)
            hu_model = resample_to_model(hu, mapping)
            normalised = m.normalization.apply(hu_model)
            del hu_model
        report(_RESAMPLE_IN)

        predict_seconds = 0.0

        def timed_predict(batch: NDArray[np.float32]) -> NDArray[np.float32]:
            nonlocal predict_seconds
            start = time.perf_counter()
            try:
                return self.predict_batch(batch)
            finally:
                predict_seconds += time.perf_counter() - start

        start = time.perf_counter()
        scores = sliding_window_inference(
            normalised,
            timed_predict,
            m.patch_size,
            m.overlap,
            self.batch_size,
            m.num_classes,
            lambda f: report(_RESAMPLE_IN + _INFERENCE * f),
            pad_value=m.normalization.value_of(AIR_HU),
        )
        self.last_timings["inference"] = predict_seconds
        self.last_timings["accumulate"] = time.perf_counter() - start - predict_seconds
        del normalised
        if m.output_kind == "logits":
            with self._timed("softmax"):
                probabilities = softmax_classes(scores)
        else:
            probabilities = scores

        with self._timed("argmax"):
            model_labels = argmax_labels(probabilities)
        with self._timed("resample_out"):
            labels = labels_on_native_grid(probabilities, shape, model_labels=model_labels)
        del probabilities
        if m.refinement == "attenuation":
            with self._timed("refine"):
                labels = refine_by_attenuation(labels, hu, frame.spacing)
        report(1.0)
        return frame.from_canonical(labels)
