"""Vertebral names and the last rib's lower margin on the shared scans, at several grids.

    python bench/eval_landmarks_real.py [--shared-data ../shared/data] [--grids native,3mm]
        [--labels rules,reference] [--bodies]

Each scan (and its resampling: CT linear, reference nearest neighbour) is segmented by the
rule-based segmenter and its landmarks found as `habitus analyze` finds them (``rules``), or
found from the reference's bone (``reference``). Each named vertebra is checked against the
reference vertebra at its middle slice; the last rib's lower margin against the lowest voxel
of any reference rib. ``--bodies`` prints the vertebral bodies found (z extent, height, the
disc below) and the reference vertebrae at each body's middle slice. References are
TotalSegmentator output (silver standard): see ../shared/data/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from habitus.anatomy import Anatomy, find_anatomy  # noqa: E402
from habitus.segment.rules import RuleSegmenter  # noqa: E402
from tests.anatomy.real_data import RealCase, petct, resampled, upper_abdomen  # noqa: E402

GRIDS: dict[str, tuple[float, float, float] | None] = {
    "native": None,
    "3mm": (3.0, 3.0, 3.0),
    "1mm": (1.0, 1.0, 1.0),
    "5mm-slices": (5.0, 0.0, 0.0),  # 0: the scan's own in-plane spacing
}


def _on_grid(case: RealCase, grid: tuple[float, float, float] | None) -> RealCase:
    if grid is None:
        return case
    own = case.volume.geometry.spacing
    return resampled(case, (grid[0], grid[1] or own[1], grid[2] or own[2]))


def _bodies(case: RealCase, anatomy: Anatomy) -> list[str]:
    frame = anatomy.frame
    lines, previous = [], None
    for seg, vertebra in zip(anatomy.spine.segments, anatomy.landmarks.vertebrae, strict=True):
        z0, z1 = float(frame.z_mm[seg.lo]), float(frame.z_mm[seg.hi])
        disc = "" if previous is None else f", disc below {z0 - previous:.0f} mm"
        previous = z1 + frame.slice_interval_mm
        k = int(round(vertebra.middle_slice))
        truth = sorted(
            case.names[int(v)].removeprefix("vertebrae_")
            for v in set(case.reference[k].ravel().tolist())
            if case.names.get(int(v), "").startswith("vertebrae_")
        )
        lines.append(
            f"    z {z0:.0f} to {z1:.0f} mm, height {seg.height_mm(frame):.0f} mm{disc}"
            f"{'' if seg.complete else ' (open)'}: named {vertebra.name or '-'}, "
            f"reference at its middle {'/'.join(truth) or '-'}"
        )
    return lines


def _named(case: RealCase, anatomy: Anatomy) -> str:
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
    parser.add_argument("--grids", default=",".join(GRIDS), help="of: " + ", ".join(GRIDS))
    parser.add_argument("--labels", default="rules", help="rules, reference or both, comma")
    parser.add_argument("--bodies", action="store_true", help="print the bodies found")
    args = parser.parse_args()
    segmenter = RuleSegmenter()
    for name, load in (("ts-upper-abdomen", upper_abdomen), ("ts-petct-dicom", petct)):
        case = load(args.shared_data)
        for grid_name in args.grids.split(","):
            on_grid = _on_grid(case, GRIDS[grid_name])
            spacing = " x ".join(f"{s:.2g}" for s in on_grid.volume.geometry.spacing)
            for source in args.labels.split(","):
                labels = segmenter.segment(on_grid.volume) if source == "rules" else on_grid.labels
                anatomy = find_anatomy(labels, on_grid.volume.geometry, on_grid.volume.hu)
                print(f"{name} {grid_name} ({spacing} mm), {source}: {_named(on_grid, anatomy)}")
                if args.bodies:
                    print("\n".join(_bodies(on_grid, anatomy)))


if __name__ == "__main__":
    main()
