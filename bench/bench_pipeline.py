"""Time each stage of habitus.pipeline.analyze on a 200-slice 512x512 CT series (CPU).

The synthetic series is written first (untimed), then analysed; the table shows the seconds
each stage took, as the pipeline itself measures them (report.json's timings_s).

    python bench/bench_pipeline.py [--slices 200] [--rows 512] [--segmenter auto|model|rules]
                                   [--j2k] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

from habitus.phantoms.torso import synthetic_torso
from habitus.phantoms.write_dicom import axial_geometry, write_series
from habitus.pipeline import AnalysisOptions, analyze


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--segmenter", choices=["auto", "model", "rules"], default="auto")
    parser.add_argument("--j2k", action="store_true", help="write the series as JPEG 2000")
    parser.add_argument("--keep", type=Path, help="keep the series and outputs here")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="habitus-bench-"))
    shape = (args.slices, args.rows, args.rows)
    spacing = (2.0, 400.0 / args.rows, 400.0 / args.rows)
    hu, _ = synthetic_torso(shape, spacing, seed=0)
    syntax = JPEG2000Lossless if args.j2k else ExplicitVRLittleEndian
    write_series(root / "series", hu, axial_geometry(shape, spacing), transfer_syntax=syntax)

    start, cpu_start = time.perf_counter(), time.process_time()
    result = analyze(
        root / "series", root / "out", AnalysisOptions(segmenter=args.segmenter, device="cpu")
    )
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start

    print(
        f"{os.cpu_count()} CPU(s); {args.slices} x {args.rows} x {args.rows}, "
        f"{'JPEG 2000' if args.j2k else 'uncompressed'}; segmenter "
        f"{result.report.model.model_id} on {result.report.model.device}"
    )
    print(f"{'stage':<10}{'seconds':>9}")
    for stage, seconds in result.report.timings_s.items():
        print(f"{stage:<10}{seconds:>9.2f}")
    load = os.getloadavg()[0]
    print(f"{'total':<10}{total:>9.2f}   ({cpu:.2f} s CPU in this process; load {load:.1f})")


if __name__ == "__main__":
    main()
