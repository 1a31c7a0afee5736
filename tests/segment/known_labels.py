"""A segmenter that returns a label map known in advance (a phantom's true labels): it
isolates what follows segmentation (metrics, uptake, outputs) from segmentation quality."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from habitus.progress import StepCallback
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume


class KnownLabels:
    """Returns ``labels`` for a CT volume of their shape."""

    def __init__(self, labels: NDArray[np.uint8]) -> None:
        self.labels = labels

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(model_id="phantom-truth", version="1", kind="rules")

    def segment(self, volume: CTVolume, progress: StepCallback | None = None) -> NDArray[np.uint8]:
        assert volume.hu.shape == self.labels.shape
        return self.labels
