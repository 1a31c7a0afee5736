"""What the bundled model costs on a 200-slice 512 x 512 series, through the ONNX engine.

    python bench/bench_model.py [--manifest PATH] [--threads N] [--repeat N] [--profile N]

The series is a synthetic phantom (chest, abdomen and pelvis, 2.5 mm slices, 0.8 mm pixels),
drawn at 1.6 mm and repeated in-plane to 512 x 512 so that building it takes seconds. Prints
the wall time of ``OnnxSegmenter.segment`` and of each of its steps, the median over the runs
against the target (under 15 s on 2 cores), and the load average before and after, since the
machine may be shared. ``--profile N`` adds the N costliest functions of one more run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import time
from pathlib import Path

import numpy as np

from habitus.phantoms import random_acquisition, random_spec, render
from habitus.segment.loader import find_default_manifest
from habitus.segment.onnx_segmenter import OnnxSegmenter
from habitus.volume import CTVolume, Geometry

TARGET_S = 15.0


def series_200x512x512(seed: int = 3) -> CTVolume:
    acq = random_acquisition(seed, spacing_mm=(2.5, 1.6, 1.6), scan_range="chest_abdomen_pelvis")
    acq = type(acq)(**{**acq.__dict__, "fov_mm": 409.6, "u_range": (0.2, 0.2 + 500 / 1750)})
    phantom = render(random_spec(seed), acq)
    hu = phantom.volume.hu[:200]
    if hu.shape[0] < 200:
        hu = np.concatenate([hu, np.repeat(hu[-1:], 200 - hu.shape[0], axis=0)])
    hu = np.repeat(np.repeat(hu, 2, axis=1), 2, axis=2)
    geometry = Geometry(spacing=(2.5, 0.8, 0.8), origin=phantom.volume.geometry.origin)
    return CTVolume(hu=np.ascontiguousarray(hu), geometry=geometry, slice_thickness_mm=2.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, help="list the N costliest functions")
    args = parser.parse_args()
    manifest = args.manifest or find_default_manifest()
    if manifest is None:
        raise SystemExit("no bundled model found")
    volume = series_200x512x512()
    segmenter = OnnxSegmenter(manifest, device="cpu", threads=args.threads)
    print(f"model {manifest.name}, series {volume.shape}, {os.cpu_count()} CPUs")
    print(f"load average before: {_loadavg()}")
    times = []
    for run in range(args.repeat):
        start = time.perf_counter()
        labels = segmenter.segment(volume)
        seconds = time.perf_counter() - start
        times.append(seconds)
        steps = {k: round(v, 2) for k, v in segmenter.last_timings.items()}
        print(f"run {run + 1}: {seconds:.1f} s  steps {json.dumps(steps)}")
        print("  voxels per class:", np.bincount(labels.ravel(), minlength=8).tolist())
    print(f"load average after: {_loadavg()}")
    median = statistics.median(times)
    verdict = "meets" if median < TARGET_S else "misses"
    print(f"median of {len(times)}: {median:.1f} s ({verdict} the target of {TARGET_S:.0f} s)")
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(segmenter.segment, volume)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.profile)


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "-"


if __name__ == "__main__":
    main()
