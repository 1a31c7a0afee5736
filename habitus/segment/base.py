"""The Segmenter protocol: a CT volume in, a label map on the same grid out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from habitus.progress import StepCallback
from habitus.volume import CTVolume

SegmenterKind = Literal["onnx", "rules"]


@dataclass(frozen=True)
class ModelInfo:
    """Which segmenter ran; written into the report, the SEG and the SR."""

    model_id: str  # e.g. "habitus-unet3d-cpu" or "habitus-rules"
    version: str
    kind: SegmenterKind
    description: str = ""
    sha256: str | None = None  # checksum of the model file, for ONNX models
    device: str = "cpu"  # where it actually ran: cpu | cuda


class Segmenter(Protocol):
    @property
    def info(self) -> ModelInfo: ...

    def segment(self, volume: CTVolume, progress: StepCallback | None = None) -> NDArray[np.uint8]:
        """Return labels (values of habitus.labels.Tissue) with ``volume.hu``'s shape."""
        ...
