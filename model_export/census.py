"""What the loss sees: each class's share of the labelled voxels over a run's first batches.

A class the batches rarely hold is a class the network may never learn; counting is cheap
(no network), so a change of recipe (the labelled cases, their share, the patch sampling) can
be checked before any training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from habitus.labels import NUM_LABELS, Tissue
from model_export.stream import PatchStream
from model_export.training_pairs import IGNORE


@dataclass(frozen=True)
class Census:
    batches: int
    voxels: tuple[int, ...]  # labelled voxels of each class (Tissue value as index)
    padded: int  # voxels outside the scans (IGNORE), not in the loss
    batches_without: tuple[int, ...]  # batches holding no voxel of each class

    def shares(self) -> dict[str, float]:
        """Each class's share of the labelled voxels."""
        total = max(1, sum(self.voxels))
        return {Tissue(v).name.lower(): n / total for v, n in enumerate(self.voxels)}

    def to_dict(self) -> dict[str, object]:
        names = [Tissue(v).name.lower() for v in range(NUM_LABELS)]
        return {
            "batches": self.batches,
            "labelled_voxels": sum(self.voxels),
            "padded_share": round(self.padded / max(1, self.padded + sum(self.voxels)), 4),
            "class_shares": {k: round(s, 5) for k, s in self.shares().items()},
            "batches_without": dict(zip(names, self.batches_without, strict=True)),
        }


def census(stream: PatchStream, batches: int) -> Census:
    """Class counts over the batches of steps ``stream.start`` to ``stream.start + batches``."""
    voxels = np.zeros(NUM_LABELS, dtype=np.int64)
    without = np.zeros(NUM_LABELS, dtype=np.int64)
    padded = 0
    for step in range(stream.start, stream.start + batches):
        _, labels = stream.batch(step)
        y = labels.numpy()
        counts = np.bincount(y[y != IGNORE].ravel(), minlength=NUM_LABELS)
        voxels += counts
        without += counts == 0
        padded += int((y == IGNORE).sum())
    return Census(
        batches=batches,
        voxels=tuple(int(n) for n in voxels),
        padded=padded,
        batches_without=tuple(int(n) for n in without),
    )
