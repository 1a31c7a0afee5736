"""The rule-based segmenter on contrast versions of the real scans.

    python bench/eval_rules_contrast.py [--shared-data ../shared/data]

Each shared scan is segmented as it is and with arterial, portal-venous and delayed contrast
painted into its reference heart, vessels, liver, spleen, kidneys and pancreas
(model_export/painted_contrast.py, targets at the middle of each phase's range). References are
TotalSegmentator output (silver standard): see ../shared/data/README.md. ts-petct-dicom is
itself a portal-venous scan (aorta about 150 HU), so its "as scanned" row is contrast too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from habitus.labels import Tissue  # noqa: E402
from habitus.metrics.contrast import ContrastPhase  # noqa: E402
from habitus.segment.rules import RuleSegmenter  # noqa: E402
from tests.segment.rules.evaluation import BONES, GREAT_VESSELS, coverage, dice  # noqa: E402
from tests.segment.rules.realdata import petct, upper_abdomen, with_contrast  # noqa: E402

ORGANS = ("liver", "spleen", "kidney_left", "kidney_right", "pancreas")
PHASES = (
    ContrastPhase.NONE,
    ContrastPhase.ARTERIAL,
    ContrastPhase.PORTAL_VENOUS,
    ContrastPhase.DELAYED,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared-data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    segmenter = RuleSegmenter()
    header = (
        f"{'case':<34} {'bone Dice':>9} {'vs as scanned':>13} {'blood IO':>8} "
        f"{'blood bone':>10} {'organs bone':>11} {'seconds':>7}"
    )
    print(header)
    for load in (upper_abdomen, petct):
        base = load(args.shared_data)
        base_dice = None
        for phase in PHASES:
            case = with_contrast(base, phase) if phase != ContrastPhase.NONE else base
            start = time.perf_counter()
            labels = segmenter.segment(case.volume)
            seconds = time.perf_counter() - start
            bone = dice(labels == Tissue.BONE, case.mask(*BONES))
            base_dice = bone if base_dice is None else base_dice
            blood = case.mask(*GREAT_VESSELS)
            organs = case.mask(*ORGANS)
            name = f"{base.name} ({'as scanned' if phase == ContrastPhase.NONE else phase})"
            print(
                f"{name:<34} {bone:9.3f} {bone - base_dice:+13.3f} "
                f"{coverage(labels, blood, Tissue.IO):8.3f} "
                f"{coverage(labels, blood, Tissue.BONE):10.3f} "
                f"{coverage(labels, organs, Tissue.BONE):11.3f} {seconds:7.1f}"
            )


if __name__ == "__main__":
    main()
