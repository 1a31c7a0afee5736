"""Vertebral names on the whole-body generator phantoms (``habitus.phantoms.generator``).

    python bench/eval_levels_phantoms.py [--seeds 1,2,3,4,5]
        [--ranges whole_body,abdomen_pelvis] [--spacing 3]

The landmarks are found from the phantom's own label map, as from a perfect segmentation.
Each named vertebra is checked against the phantom's level at its middle (lumbar levels are
of equal height between its T12/L1 and L5/S1 landmarks; above them any thoracic name is
right). A name is printed as ``L3*`` when confirmed by two counts, ``L2!=L1`` when wrong
(the phantom's level after ``!=``; thoracic levels as ``T``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from habitus.anatomy import find_anatomy  # noqa: E402
from habitus.phantoms.generator import Phantom, make_phantom  # noqa: E402


def named(phantom: Phantom) -> str:
    marks = find_anatomy(phantom.labels, phantom.volume.geometry).landmarks
    shown = []
    for vertebra in marks.vertebrae:
        if vertebra.name is None:
            continue
        truth = phantom.level_at(sum(vertebra.extent_z_mm) / 2)
        right = vertebra.name.startswith("T") if truth == "T" else vertebra.name == truth
        shown.append(
            f"{vertebra.name}{'' if right else '!=' + truth}{'*' if vertebra.confirmed else ''}"
        )
    if marks.l3.present and marks.l3.z_mm is not None:
        l3 = f"L3 named, the phantom's {phantom.level_at(marks.l3.z_mm)}"
    else:
        l3 = f"no L3: {marks.l3.reason}"
    return f"{' '.join(shown) or 'none named'}; {l3}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--ranges", default="whole_body,abdomen_pelvis")
    parser.add_argument("--spacing", type=float, default=3.0, help="mm, isotropic")
    args = parser.parse_args()
    spacing = (args.spacing, args.spacing, args.spacing)
    for seed in (int(s) for s in args.seeds.split(",")):
        for scan_range in args.ranges.split(","):
            start = time.perf_counter()
            phantom = make_phantom(seed, spacing_mm=spacing, scan_range=scan_range)
            text = named(phantom)
            took = time.perf_counter() - start
            print(f"seed {seed} {scan_range} ({took:.0f} s): {text}", flush=True)


if __name__ == "__main__":
    main()
