"""Vertebral names and the last rib's lower margin on the shared scans, at several grids.

    python bench/eval_landmarks_real.py [--shared-data ../shared/data]

Each scan (and its resampling: CT linear, reference nearest neighbour) is segmented by the
rule-based segmenter and its landmarks found as `habitus analyze` finds them. Each named
vertebra is checked against the reference vertebra at its middle slice; the last rib's
lower margin against the lowest voxel of any reference rib. References are TotalSegmentator
output (silver standard): see ../shared/data/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from habitus.anatomy import find_anatomy  # noqa: E402
from habitus.segment.rules import RuleSegmenter  # noqa: E402
from tests.anatomy.real_data import RealCase, petct, resampled, upper_abdomen  # noqa: E402

GRIDS: dict[str, tuple[float, float, float] | None] = {
    "native": None,
    "3 mm": (3.0, 3.0, 3.0),
    "1 mm": (1.0, 1.0, 1.0),
    "5 mm slices": (5.0, 0.0, 0.0),  # 0: the scan's own in-plane spacing
}


def _on_grid(case: RealCase, grid: tuple[float, float, float] | None) -> RealCase:
    if grid is None:
        return case
    own = case.volume.geometry.spacing
    return resampled(case, (grid[0], grid[1] or own[1], grid[2] or own[2]))


def _named(case: RealCase, labels: object) -> str:
    anatomy = find_anatomy(labels, case.volume.geometry, case.volume.hu)  # type: ignore[arg-type]
    marks = anatomy.landmarks
    shown = []
    for vertebra in (v for v in marks.vertebrae if v.name):
        value = next(k for k, n in case.names.items() if n == f"vertebrae_{vertebra.name}")
        right = bool((case.reference[int(round(vertebra.middle_slice))] == value).any())
        state = "confirmed" if vertebra.confirmed else "one count"
        shown.append(f"{vertebra.name} ({state}, {'right' if right else 'WRONG'})")
    l3 = "L3 named" if marks.l3.present else f"no L3: {marks.l3.reason}"
    ribs = case.values_named(lambda n: n.startswith("rib_"))
    rib_slices = case.slices_with(ribs)
    if marks.last_rib.z_mm is None or not len(rib_slices):
        rib = f"last rib: none ({marks.last_rib.reason})"
    else:
        truth = min(case.volume.geometry.z_of_slice(int(k)) for k in rib_slices)
        rib = f"last rib error {marks.last_rib.z_mm - truth:+.1f} mm ({marks.last_rib.structure})"
    return f"{', '.join(shown) or 'none named'}; {l3}; {rib}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared-data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    segmenter = RuleSegmenter()
    for name, load in (("ts-upper-abdomen", upper_abdomen), ("ts-petct-dicom", petct)):
        case = load(args.shared_data)
        for grid_name, grid in GRIDS.items():
            on_grid = _on_grid(case, grid)
            labels = segmenter.segment(on_grid.volume)
            spacing = " x ".join(f"{s:.2g}" for s in on_grid.volume.geometry.spacing)
            print(f"{name} {grid_name} ({spacing} mm): {_named(on_grid, labels)}")


if __name__ == "__main__":
    main()
