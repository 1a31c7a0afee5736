"""Per-class agreement of the rule-based segmenter with the real scans' references.

    python bench/eval_rules_real.py [--shared-data ../shared/data]

References are TotalSegmentator output (silver standard): see ../shared/data/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from habitus.segment.rules import RuleSegmenter  # noqa: E402
from tests.segment.rules.evaluation import figures  # noqa: E402
from tests.segment.rules.realdata import petct, upper_abdomen  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared-data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    segmenter = RuleSegmenter()
    for load in (upper_abdomen, petct):
        case = load(args.shared_data)
        start = time.perf_counter()
        labels = segmenter.segment(case.volume)
        seconds = time.perf_counter() - start
        print(f"\n{case.name}  {case.volume.shape}  segmented in {seconds:.1f} s")
        for name, value in figures(case, labels).rows():
            shown = "   n/a" if value != value else f"{value:6.3f}"
            print(f"  {name:<45} {shown}")


if __name__ == "__main__":
    main()
