"""Throughput of a training run: steps/s, patches/s and the share of time spent waiting for data.

A data-wait share near zero means the device is kept busy; a large one means the patch
generators are the bottleneck (add ``--workers``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Throughput:
    steps: int
    seconds: float
    steps_per_s: float
    patches_per_s: float
    data_wait: float  # share of the wall time spent waiting for the next batch

    def line(self, step: int) -> str:
        return (
            f"step {step}: {self.steps_per_s:.2f} steps/s, {self.patches_per_s:.1f} patches/s, "
            f"waiting for data {100 * self.data_wait:.0f}% of the time"
        )


class ThroughputMeter:
    """Accumulates wall time and data-wait time between two reports."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._since = time.perf_counter()
        self._steps = 0
        self._wait = 0.0

    def waited(self, seconds: float) -> None:
        self._wait += seconds

    def stepped(self) -> None:
        self._steps += 1

    def report(self) -> Throughput:
        """Figures since the previous report; starts the next interval."""
        now = time.perf_counter()
        seconds = max(now - self._since, 1e-9)
        result = Throughput(
            steps=self._steps,
            seconds=seconds,
            steps_per_s=self._steps / seconds,
            patches_per_s=self._steps * self.batch_size / seconds,
            data_wait=min(self._wait / seconds, 1.0),
        )
        self._since, self._steps, self._wait = now, 0, 0.0
        return result
