"""Time the rule-based segmenter on a synthetic torso, step by step.

    python bench/bench_rules.py [--slices 200] [--rows 512] [--repeat 1]

The torso comes from habitus.phantoms.torso (ellipses with noise, 0.8 mm pixels, 2.5 mm
slices by default). Prints the wall and CPU time of each anatomical step (between progress
marks) and of the whole segment() call, and the peak resident memory of the process. On a
shared machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from habitus.phantoms.torso import synthetic_torso  # noqa: E402
from habitus.phantoms.write_dicom import axial_geometry  # noqa: E402
from habitus.segment.rules import RuleSegmenter  # noqa: E402
from habitus.volume import CTVolume  # noqa: E402


def _recorder(marks: list[tuple[float, float, float]]) -> Callable[[float], None]:
    return lambda fraction: marks.append((fraction, time.perf_counter(), time.process_time()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--pixel-mm", type=float, default=0.8)
    parser.add_argument("--slice-mm", type=float, default=2.5)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    shape = (args.slices, args.rows, args.rows)
    spacing = (args.slice_mm, args.pixel_mm, args.pixel_mm)
    hu, _ = synthetic_torso(shape, spacing)
    volume = CTVolume(hu=hu, geometry=axial_geometry(shape, spacing))
    segmenter = RuleSegmenter()
    print(f"volume {shape}, spacing {spacing} mm")

    for run in range(args.repeat):
        marks: list[tuple[float, float, float]] = []
        start, start_cpu = time.perf_counter(), time.process_time()
        labels = segmenter.segment(volume, progress=_recorder(marks))
        total, total_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        previous, previous_cpu = start, start_cpu
        steps = []
        for fraction, at, at_cpu in marks:
            wall, cpu = at - previous, at_cpu - previous_cpu
            steps.append(f"{fraction:.2f}: {wall:4.1f} s ({cpu:4.1f} s cpu)")
            previous, previous_cpu = at, at_cpu
        print(f"run {run + 1}: {total:.1f} s wall, {total_cpu:.1f} s cpu")
        print("  progress mark: time since the previous mark")
        for step in steps:
            print(f"  {step}")
    counts = np.bincount(labels.ravel(), minlength=8)
    print("voxels per label:", counts.tolist())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"peak resident memory: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
