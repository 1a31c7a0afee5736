"""Time of the landmark step (``habitus.anatomy.find_anatomy``) over a whole spine.

    python bench/bench_landmarks.py [--slice-mm 1] [--repeats 3]

The phantom of ``habitus.phantoms.landmark_phantom`` from the feet to the neck (T1 to the
sacrum, 12 rib pairs, pelvis), at the given slice interval, with its CT: the label map and
CT as the pipeline hands them to the landmark step. Prints the best and median wall time of
``--repeats`` runs, and the vertebrae named (a check that the work done is the whole job).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from habitus.anatomy import find_anatomy  # noqa: E402
from habitus.phantoms.landmark_phantom import build_phantom  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slice-mm", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    phantom = build_phantom(slice_mm=args.slice_mm)
    labels, volume = phantom.volume(hu=phantom.hu())
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        anatomy = find_anatomy(labels, volume.geometry, volume.hu)
        times.append(time.perf_counter() - start)
    named = [v.name for v in anatomy.landmarks.vertebrae if v.name]
    print(
        f"landmark phantom, {labels.shape[0]} slices of {args.slice_mm:g} mm, "
        f"{labels.shape[1]} x {labels.shape[2]} pixels: best {min(times):.2f} s, "
        f"median {statistics.median(times):.2f} s over {args.repeats} runs; "
        f"named {len(named)} ({named[-1] if named else '-'} to {named[0] if named else '-'}), "
        f"L3 {'named' if anatomy.landmarks.l3.present else 'absent'}"
    )


if __name__ == "__main__":
    main()
