"""Overlap figures between a predicted and a reference mask (Dice, sensitivity, precision)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Overlap:
    true_positive: int
    predicted: int
    reference: int

    @property
    def dice(self) -> float | None:
        total = self.predicted + self.reference
        return 2.0 * self.true_positive / total if total else None

    @property
    def sensitivity(self) -> float | None:
        return self.true_positive / self.reference if self.reference else None

    @property
    def precision(self) -> float | None:
        return self.true_positive / self.predicted if self.predicted else None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "dice": self.dice,
            "sensitivity": self.sensitivity,
            "precision": self.precision,
            "reference_voxels": self.reference,
            "predicted_voxels": self.predicted,
        }


def overlap(predicted: NDArray[np.bool_], reference: NDArray[np.bool_]) -> Overlap:
    if predicted.shape != reference.shape:
        raise ValueError(f"masks differ in shape: {predicted.shape} and {reference.shape}")
    return Overlap(
        true_positive=int(np.count_nonzero(predicted & reference)),
        predicted=int(np.count_nonzero(predicted)),
        reference=int(np.count_nonzero(reference)),
    )


def per_class(
    predicted: NDArray[np.uint8], reference: NDArray[np.uint8], classes: list[int]
) -> dict[int, Overlap]:
    """Overlap of each class value, from one confusion matrix."""
    n = max(int(predicted.max(initial=0)), int(reference.max(initial=0)), *classes) + 1
    confusion = np.bincount(
        reference.ravel().astype(np.int64) * n + predicted.ravel(), minlength=n * n
    ).reshape(n, n)
    return {
        c: Overlap(
            true_positive=int(confusion[c, c]),
            predicted=int(confusion[:, c].sum()),
            reference=int(confusion[c, :].sum()),
        )
        for c in classes
    }


def coverage(labels: NDArray[np.uint8], region: NDArray[np.bool_], value: int) -> float | None:
    """Share of the voxels of ``region`` labelled ``value``."""
    n = int(np.count_nonzero(region))
    return float(np.count_nonzero(labels[region] == value)) / n if n else None
