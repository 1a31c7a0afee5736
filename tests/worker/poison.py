"""A segmenter for tests: the analysis of a series described ``KILLS ITS WORKER`` ends its
own process in the middle of segmenting, as a series that crashes native code would; any
other series is segmented by the segmenter it wraps. ``tests.worker.poison_plugin`` puts it
into a worker.
"""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import NDArray

from habitus.progress import StepCallback
from habitus.segment.base import ModelInfo, Segmenter
from habitus.volume import CTVolume

POISON_DESCRIPTION = "KILLS ITS WORKER"


class KillingSegmenter:
    def __init__(self, inner: Segmenter) -> None:
        self.inner = inner

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    def segment(self, volume: CTVolume, progress: StepCallback | None = None) -> NDArray[np.uint8]:
        if volume.source is not None and volume.source.description == POISON_DESCRIPTION:
            if progress is not None:
                progress(0.1)  # the attempt shows in the job's progress first
            os._exit(70)
        return self.inner.segment(volume, progress)
